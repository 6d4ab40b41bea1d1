"""Unsaved model instances for bulk writes, built without ``Model.__init__``'s generic keyword handling.

``Model(**values)`` walks every field, tries each one's keyword under two names, looks up properties for the
rest and sends ``pre_init``/``post_init``: about 20-40 µs a row, which a bulk import pays several times per
record (the consent event, its current-state row, its governance record and that record's sealing outbox
row). :func:`instance_new` builds the same instance from a plan made once per model: every concrete field's
value from ``values`` (by attribute name, or a related object by field name, cached as the descriptor
caches it) or its default, a fresh ``ModelState``, and the init signals only when something listens.
``tests/foundation/test_instances.py`` compares the result with ``Model(**values)`` attribute by attribute.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.db import models
from django.db.models.base import ModelState
from django.db.models.signals import post_init, pre_init

M = TypeVar("M", bound=models.Model)

# per model: (attname, name, is_relation, field) for every concrete, non-generated field
_PLANS: dict[type[models.Model], tuple[tuple[str, str, bool, models.Field], ...]] = {}


def _plan(model: type[models.Model]) -> tuple[tuple[str, str, bool, models.Field], ...]:
    plan = _PLANS.get(model)
    if plan is None:
        if model._meta.abstract:
            raise TypeError("Abstract models cannot be instantiated.")
        plan = _PLANS[model] = tuple(
            (f.attname, f.name, f.is_relation, f) for f in model._meta.concrete_fields
            if f.column is not None and not getattr(f, "generated", False))
    return plan


def instance_new(model: type[M], **values: Any) -> M:
    """``model(**values)`` for concrete field values given by keyword (a relation by its attribute name,
    ``customer_id=...``, or by its name with the related instance, ``notice=...``). Unknown keywords raise
    ``TypeError`` as the constructor does; properties and virtual fields are not accepted."""
    plan = _plan(model)
    listened = bool(pre_init.receivers) and pre_init.has_listeners(model)
    if listened:
        pre_init.send(sender=model, args=(), kwargs=values)
    obj = model.__new__(model)
    obj._state = ModelState()
    data = obj.__dict__
    used = 0
    for attname, name, is_relation, field in plan:
        if attname in values:
            data[attname] = values[attname]
            used += 1
        elif is_relation and name in values:
            setattr(obj, name, values[name])  # the descriptor sets the id and caches the related object
            used += 1
        else:
            data[attname] = field.get_default()
    if used != len(values):
        known = {attname for attname, _, _, _ in plan} | {name for _, name, rel, _ in plan if rel}
        unexpected = ", ".join(repr(k) for k in values if k not in known)
        raise TypeError(f"{model.__name__}() got unexpected keyword arguments: {unexpected or '(duplicates)'}")
    if post_init.receivers and post_init.has_listeners(model):
        post_init.send(sender=model, instance=obj)
    return obj
