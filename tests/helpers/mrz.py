"""Generated machine-readable zones (ICAO 9303 TD1 and TD3) for the MRZ tests."""

from datetime import date

from sync_protocol.identifiers import make_pinfl
from sync_protocol.mrz import check_digit

PINFL = make_pinfl(date(1990, 5, 17), "female", "261", "042")
LAYOUT = dict(zip("QWERTYUIOPASDFGHJKLZXCVBNM<", "ЙЦУКЕНГШЩЗФЫВАПРОЛДЯЧСМИТЬБ", strict=True))


def pad(text: str, width: int) -> str:
    return (text + "<" * width)[:width]


def td1(document="AD1234567", pinfl=PINFL, born="900517", sex="F", expiry="310101") -> str:
    one = f"IDUZB{document}{check_digit(document)}{pad(pinfl, 15)}"
    two_head = f"{born}{check_digit(born)}{sex}{expiry}{check_digit(expiry)}UZB"
    two_body = pad(two_head, 29)
    composite = one[5:30] + two_body[0:7] + two_body[8:15] + two_body[18:29]
    two = two_body + str(check_digit(composite))
    three = pad("KARIMOVA<<DILNOZA", 30)
    return "\n".join((one, two, three))


def td3(document="FA7654321", pinfl=PINFL, born="900517", sex="F", expiry="300228") -> str:
    one = pad("P<UZBKARIMOVA<<DILNOZA", 44)
    personal = pad(pinfl, 14)
    head = (f"{document}{check_digit(document)}UZB{born}{check_digit(born)}{sex}"
            f"{expiry}{check_digit(expiry)}{personal}{check_digit(personal)}")
    composite = head[0:10] + head[13:20] + head[21:43]
    return one + "\n" + head + str(check_digit(composite))


def garble(text: str) -> str:
    """What a reader types while the Russian layout is active."""
    return "".join(LAYOUT.get(c, c) for c in text)
