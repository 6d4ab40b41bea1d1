"""Polish: AFINN-165 translated (Apache-2.0, Finn Årup Nielsen, with inflected forms), ``data/pl.tsv``; other
inflected forms through the Snowball Polish stemmer; fused negation ("niedobry", "niezadowolona") by the
``nie`` prefix rule.

``polvader``'s word lists were tried and are not used: they are affective norms (what a word evokes:
"weekendy" +4, "piątek" +2.3, "odszkodowanie" -2.4), not the evaluation a message makes, and every mix with
them scored below AFINN-pl alone on the development set (``bench/data/sentiment/dev/pl.jsonl``).
"""

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
    # adjective endings back to the masculine nominative the list holds ("dobra", "dobre", "dobrej" -> "dobry")
    suffixes=(("ego", "y"), ("emu", "y"), ("ymi", "y"), ("ych", "y"), ("ej", "y"), ("ym", "y"), ("ą", "y"),
              ("a", "y"), ("e", "y"), ("y", "a")),
    stemmer="polish",
)
