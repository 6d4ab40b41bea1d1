"""Polish: AFINN-165 translated (Apache-2.0, with inflected forms) first, then the word lists inside
``polvader`` 1.0.1 (MIT: its expanded lexicon and the inflected forms of its final lexicon, rescaled), read
from ``data/pl.tsv``; polvader's own analyser needs a spaCy model that is not available and is not used.
Fused negation ("niedobry", "niezadowolona") is handled by the ``nie`` prefix rule."""

from .base import LanguageRules, words

RULES = LanguageRules(
    code="pl",
    lexicon_file="pl.tsv",
    negators=words(["nie", "bez", "ani", "brak", "nigdy", "żaden", "żadna", "żadne", "żadnego", "żadnej",
                    "nic", "niczego", "nikt"]),
    boosters=words(["bardzo", "niezwykle", "wyjątkowo", "ogromnie", "strasznie", "naprawdę", "totalnie",
                    "całkowicie", "zupełnie", "absolutnie", "szczególnie", "mega", "zbyt",
                    "niesamowicie", "kompletnie"]),
    dampeners=words(["trochę", "nieco", "lekko", "raczej", "dość", "dosyć", "prawie", "ledwo", "względnie"]),
    contrast=words(["ale", "lecz", "jednak", "jednakże", "natomiast"]),
    negation_prefixes=("nie",),
    ignore=words(["proszę", "ja", "ty", "on", "ona", "ono", "my", "wy", "oni", "mój", "moja", "moje", "mojego", "mojej", "mnie", "mi", "się", "jest", "są", "był", "była", "było", "byli", "jestem", "jesteśmy", "być", "mam", "ma", "mają", "miał", "miała", "chcę", "chciałbym", "chciałabym", "chcielibyśmy", "chce", "może", "można", "mogę", "czy", "zmienić", "przesłać", "wysłać", "proszę", "zmiana", "zamówienie", "zamówienia", "paczka", "paczki", "paczkę", "dostawa", "dostawy", "dostawę", "adres", "adresu", "konto", "faktura", "faktury", "pytanie", "to", "ten", "ta", "te", "tego", "tej", "i", "oraz", "lub", "albo", "na", "w", "we", "z", "ze", "do", "od", "po", "przez", "dla", "o", "u", "jak", "co", "kiedy", "gdzie", "dlaczego", "że", "jeśli", "też", "także", "już", "jeszcze", "tu", "tutaj", "tam", "teraz", "dziś", "dzisiaj", "tak"]),
    # No stem fallback: the lists already carry the inflected forms, and Polish stems collide too often.
)
