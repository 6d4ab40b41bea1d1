"""Pagination shared by all list endpoints."""

from rest_framework.pagination import CursorPagination


class DefaultPagination(CursorPagination):
    page_size = 50
    max_page_size = 500
    page_size_query_param = "page_size"
    ordering = "-id"
