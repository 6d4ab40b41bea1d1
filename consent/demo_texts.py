"""Free text of the demo data set: support tickets, reviews and NPS comments in the six demo languages.

Ticket templates come in three moods (``negative`` / ``neutral`` / ``positive``) with the same order in every
language, so the category of template ``j`` of a mood (:data:`TICKET_CATEGORIES`) is the same in every
language. Placeholders: ``{name}``, ``{first}``, ``{email}``, ``{phone}``, ``{iban}``, ``{order}`` -- the author's
own (fake) identifiers, which the ingestion pseudonymizes before anything is stored.
"""

from __future__ import annotations

MOODS = ("negative", "neutral", "positive")

TICKET_CATEGORIES: dict[str, tuple[str, ...]] = {
    "negative": ("delivery", "billing", "product", "cancellation", "returns"),
    "neutral": ("product", "billing", "account", "delivery", "delivery"),
    "positive": ("product", "returns", "delivery"),
}

TICKET_TEXTS: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "negative": (
            "This is the third time my order {order} is late. I am really fed up and thinking of taking my "
            "business elsewhere. {name}",
            "Nobody answers my e-mails. The invoice for {order} is still wrong and I was charged twice. Call me on "
            "{phone}. {name}",
            "Very disappointed. The replacement for order {order} arrived broken again. If this is not fixed I will "
            "close my account. {email}",
            "Please close my account. Your service has become terrible and I no longer trust you. {name}, {email}",
            "I have waited two weeks for the refund to {iban}. This is unacceptable. {first}",
        ),
        "neutral": (
            "Hi, this is {name}. My order {order} arrived damaged. Please call me on {phone} or write to {email}.",
            "Could you send me a copy of the invoice for order {order}? Thanks, {first}",
            "I can't log in to the app since yesterday. My e-mail is {email}. Regards, {first}",
            "Where is my parcel? Order {order}. You can reach me at {phone}. {name}",
            "Please change the delivery address for order {order}. {name}",
        ),
        "positive": (
            "Thank you for the quick help with order {order}, everything works now. {first}",
            "Great service as always, the exchange went smoothly. Best regards, {name}",
            "Just wanted to say thanks: the new parcel arrived a day early. {first}",
        ),
    },
    "de": {
        "negative": (
            "Das ist schon das dritte Mal, dass meine Bestellung {order} zu spät kommt. Ich bin wirklich verärgert "
            "und überlege, woanders zu bestellen. {name}",
            "Niemand antwortet auf meine E-Mails. Die Rechnung zu {order} ist immer noch falsch und mir wurde doppelt "
            "abgebucht. Rufen Sie mich unter {phone} an. {name}",
            "Sehr enttäuscht. Der Ersatz für Bestellung {order} ist wieder kaputt angekommen. Wenn das nicht gelöst "
            "wird, kündige ich mein Konto. {email}",
            "Bitte schließen Sie mein Kundenkonto. Ihr Service ist miserabel geworden und ich vertraue Ihnen nicht "
            "mehr. {name}, {email}",
            "Ich warte seit zwei Wochen auf die Erstattung auf mein Konto {iban}. Das ist inakzeptabel. {first}",
        ),
        "neutral": (
            "Hallo, hier ist {name}. Meine Bestellung {order} kam beschädigt an. Bitte rufen Sie mich unter {phone} "
            "an oder schreiben Sie an {email}.",
            "Können Sie mir eine Kopie der Rechnung zur Bestellung {order} schicken? Danke, {first}",
            "Ich kann mich seit gestern nicht in der App anmelden. Meine E-Mail ist {email}. Gruß, {first}",
            "Wo bleibt mein Paket? Bestellung {order}. Sie erreichen mich unter {phone}. {name}",
            "Bitte ändern Sie die Lieferadresse für Bestellung {order}. {name}",
        ),
        "positive": (
            "Vielen Dank für die schnelle Hilfe bei Bestellung {order}, jetzt funktioniert alles. {first}",
            "Toller Service wie immer, der Umtausch hat reibungslos geklappt. Viele Grüße, {name}",
            "Ich wollte mich nur bedanken: Das neue Paket kam einen Tag früher an. {first}",
        ),
    },
    "nl": {
        "negative": (
            "Dit is al de derde keer dat mijn bestelling {order} te laat is. Ik ben het echt zat en overweeg om "
            "ergens anders te bestellen. {name}",
            "Niemand reageert op mijn e-mails. De factuur van {order} klopt nog steeds niet en er is twee keer "
            "afgeschreven. Bel me op {phone}. {name}",
            "Erg teleurgesteld. De vervanging voor bestelling {order} is weer kapot aangekomen. Als dit niet wordt "
            "opgelost, zeg ik mijn account op. {email}",
            "Sluit alstublieft mijn account. Jullie service is slecht geworden en ik vertrouw jullie niet meer. "
            "{name}, {email}",
            "Ik wacht al twee weken op de terugbetaling op rekening {iban}. Dit is onacceptabel. {first}",
        ),
        "neutral": (
            "Hallo, met {name}. Mijn bestelling {order} is beschadigd aangekomen. Bel me op {phone} of mail naar "
            "{email}.",
            "Kunt u mij een kopie van de factuur van bestelling {order} sturen? Bedankt, {first}",
            "Ik kan sinds gisteren niet inloggen in de app. Mijn e-mailadres is {email}. Groet, {first}",
            "Waar blijft mijn pakket? Bestelling {order}. U kunt me bereiken op {phone}. {name}",
            "Graag het bezorgadres van bestelling {order} wijzigen. {name}",
        ),
        "positive": (
            "Bedankt voor de snelle hulp met bestelling {order}, alles werkt nu. {first}",
            "Zoals altijd een top service, het omruilen ging soepel. Met vriendelijke groet, {name}",
            "Even een bedankje: het nieuwe pakket kwam een dag eerder aan. {first}",
        ),
    },
    "pl": {
        "negative": (
            "To już trzeci raz, kiedy moje zamówienie {order} się spóźnia. Mam naprawdę dość i zastanawiam się nad "
            "zakupami gdzie indziej. {name}",
            "Nikt nie odpowiada na moje maile. Faktura do {order} nadal jest błędna, a pieniądze pobrano dwa razy. "
            "Proszę zadzwonić pod numer {phone}. {name}",
            "Ogromne rozczarowanie. Zamiennik do zamówienia {order} znowu przyszedł uszkodzony. Jeśli to nie zostanie "
            "naprawione, zamknę konto. {email}",
            "Proszę zamknąć moje konto. Obsługa stała się fatalna i nie mam już do Państwa zaufania. {name}, {email}",
            "Od dwóch tygodni czekam na zwrot pieniędzy na konto {iban}. To niedopuszczalne. {first}",
        ),
        "neutral": (
            "Dzień dobry, tu {name}. Moje zamówienie {order} dotarło uszkodzone. Proszę o kontakt pod numerem {phone} "
            "lub na adres {email}.",
            "Czy mogą Państwo przesłać kopię faktury do zamówienia {order}? Dziękuję, {first}",
            "Od wczoraj nie mogę zalogować się do aplikacji. Mój e-mail to {email}. Pozdrawiam, {first}",
            "Gdzie jest moja paczka? Zamówienie {order}. Mój numer telefonu: {phone}. {name}",
            "Proszę o zmianę adresu dostawy dla zamówienia {order}. {name}",
        ),
        "positive": (
            "Dziękuję za szybką pomoc z zamówieniem {order}, wszystko już działa. {first}",
            "Świetna obsługa jak zawsze, wymiana przebiegła bez problemów. Pozdrawiam serdecznie, {name}",
            "Chcę tylko podziękować: nowa paczka dotarła dzień wcześniej. {first}",
        ),
    },
    "fi": {
        "negative": (
            "Tilaukseni {order} on myöhässä jo kolmannen kerran. Olen todella kyllästynyt ja harkitsen tilaamista "
            "muualta. {name}",
            "Kukaan ei vastaa sähköposteihini. Tilauksen {order} lasku on yhä väärin ja minulta veloitettiin kahdesti. "
            "Soittakaa numeroon {phone}. {name}",
            "Olen hyvin pettynyt. Tilauksen {order} korvaava tuote saapui taas rikki. Jos tätä ei korjata, suljen "
            "tilini. {email}",
            "Sulkekaa asiakastilini. Palvelunne on muuttunut surkeaksi, enkä enää luota teihin. {name}, {email}",
            "Olen odottanut hyvitystä tililleni {iban} kaksi viikkoa. Tämä ei ole hyväksyttävää. {first}",
        ),
        "neutral": (
            "Hei, täällä {name}. Tilaukseni {order} saapui vaurioituneena. Soittakaa minulle numeroon {phone} tai "
            "kirjoittakaa osoitteeseen {email}.",
            "Voisitteko lähettää kopion tilauksen {order} laskusta? Kiitos, {first}",
            "En pääse kirjautumaan sovellukseen eilisestä asti. Sähköpostini on {email}. Terveisin {first}",
            "Missä pakettini on? Tilaus {order}. Tavoitatte minut numerosta {phone}. {name}",
            "Muuttakaa tilauksen {order} toimitusosoite, kiitos. {name}",
        ),
        "positive": (
            "Kiitos nopeasta avusta tilauksen {order} kanssa, nyt kaikki toimii. {first}",
            "Loistavaa palvelua kuten aina, vaihto sujui ongelmitta. Ystävällisin terveisin {name}",
            "Halusin vain kiittää: uusi paketti tuli päivän etuajassa. {first}",
        ),
    },
    "sv": {
        "negative": (
            "Det är tredje gången som min beställning {order} är försenad. Jag är riktigt trött på det och funderar "
            "på att handla någon annanstans. {name}",
            "Ingen svarar på mina mejl. Fakturan för {order} är fortfarande fel och jag har debiterats två gånger. "
            "Ring mig på {phone}. {name}",
            "Mycket besviken. Ersättningen för beställning {order} kom trasig igen. Om detta inte löses avslutar jag "
            "mitt konto. {email}",
            "Avsluta mitt konto, tack. Er service har blivit usel och jag litar inte längre på er. {name}, {email}",
            "Jag har väntat två veckor på återbetalningen till mitt konto {iban}. Det är oacceptabelt. {first}",
        ),
        "neutral": (
            "Hej, det här är {name}. Min beställning {order} kom fram skadad. Ring mig på {phone} eller skriv till "
            "{email}.",
            "Kan ni skicka en kopia av fakturan för beställning {order}? Tack, {first}",
            "Jag kan inte logga in i appen sedan igår. Min e-post är {email}. Hälsningar, {first}",
            "Var är mitt paket? Beställning {order}. Ni når mig på {phone}. {name}",
            "Vänligen ändra leveransadressen för beställning {order}. {name}",
        ),
        "positive": (
            "Tack för den snabba hjälpen med beställning {order}, nu fungerar allt. {first}",
            "Fantastisk service som alltid, bytet gick smidigt. Vänliga hälsningar, {name}",
            "Ville bara säga tack: det nya paketet kom en dag tidigare. {first}",
        ),
    },
}

REVIEW_TEXTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # (positive, negative)
    "en": (("Great quality and fast delivery.", "Very happy, will order again. {first}"),
           ("Arrived late and the box was damaged.", "Customer service never called back. {name}")),
    "de": (("Super Qualität und schnelle Lieferung.", "Sehr zufrieden, gerne wieder. {first}"),
           ("Kam zu spät und der Karton war beschädigt.", "Der Kundenservice hat nie zurückgerufen. {name}")),
    "nl": (("Goede kwaliteit en snelle levering.", "Heel tevreden, bestel zeker weer. {first}"),
           ("Te laat geleverd en de doos was beschadigd.", "De klantenservice belde nooit terug. {name}")),
    "pl": (("Świetna jakość i szybka dostawa.", "Jestem bardzo zadowolona, zamówię ponownie. {first}"),
           ("Przesyłka spóźniona, karton uszkodzony.", "Obsługa klienta nigdy nie oddzwoniła. {name}")),
    "fi": (("Hyvä laatu ja nopea toimitus.", "Erittäin tyytyväinen, tilaan uudelleen. {first}"),
           ("Toimitus myöhästyi ja laatikko oli rikki.", "Asiakaspalvelu ei koskaan soittanut takaisin. {name}")),
    "sv": (("Bra kvalitet och snabb leverans.", "Mycket nöjd, beställer igen. {first}"),
           ("Kom sent och kartongen var skadad.", "Kundtjänst ringde aldrig tillbaka. {name}")),
}
