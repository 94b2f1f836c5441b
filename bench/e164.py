"""Deterministic, realistic E.164 numbers spread over country codes and number ranges.

Every pattern below yields numbers that ``phonenumbers`` considers valid (``seed.py`` checks a
sample each run), so a server that normalizes caller IDs keeps them as they are.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

_NANP_TEXT = (
    "201 202 203 205 206 207 208 210 212 213 214 215 216 217 218 219 224 225 228 229 "
    "231 234 239 240 248 251 252 253 254 256 260 262 267 269 270 276 281 301 302 303 "
    "304 305 307 308 309 310 312 313 314 315 316 317 318 319 320 321 323 325 330 334 "
    "336 337 339 347 351 352 360 361 386 401 402 404 405 406 407 408 409 410 412 413 "
    "414 415 417 419 423 424 425 430 432 434 435 440 443 469 470 475 478 479 480 484 "
    "501 502 503 504 505 507 508 509 510 512 513 515 516 517 518 520 530 540 541 551 "
    "559 561 562 563 567 570 571 573 574 575 580 585 586 601 602 603 605 606 607 608 "
    "609 610 612 614 615 616 617 618 619 620 623 626 630 631 636 641 646 650 651 660 "
    "661 662 678 682 701 702 703 704 706 707 708 712 713 714 715 716 717 718 719 720 "
    "724 727 731 732 734 740 754 757 760 763 765 770 772 773 774 775 781 785 786 801 "
    "802 803 804 805 806 808 810 812 813 814 815 816 817 818 828 830 831 832 843 845 "
    "847 848 850 856 857 858 859 860 862 863 864 865 870 872 878 901 903 904 906 907 "
    "908 909 910 912 913 914 915 916 917 918 919 920 925 928 931 936 937 940 941 947 "
    "949 951 952 954 956 970 971 972 973 978 979 980 985 989 416 604 613 647 514 403 "
    "780 905 "
)
NANP_AREA_CODES = _NANP_TEXT.split()

# (country code, share of traffic, [(national leading digits, digits that follow), ...])
COUNTRIES: list[tuple[str, float, list[tuple[str, int]]]] = [
    (
        "1",  # NANP: real area codes, exchange 2-9XX, line XXXX
        0.45,
        [(npa, 7) for npa in NANP_AREA_CODES],
    ),
    ("44", 0.10, [("7400", 6), ("7700", 6), ("7900", 6), ("7911", 6), ("20", 8), ("161", 7)]),
    ("49", 0.08, [("151", 8), ("160", 7), ("170", 7), ("176", 8), ("30", 8), ("89", 8)]),
    ("33", 0.06, [("6", 8), ("7", 8), ("1", 8), ("4", 8)]),
    ("34", 0.04, [("6", 8), ("91", 7)]),
    ("39", 0.04, [("34", 8), ("32", 8), ("06", 8)]),
    ("31", 0.03, [("6", 8), ("20", 7)]),
    ("46", 0.02, [("70", 7), ("8", 7)]),
    ("61", 0.03, [("4", 8), ("2", 8)]),
    ("52", 0.03, [("55", 8), ("33", 8)]),
    ("55", 0.03, [("119", 8), ("219", 8)]),
    ("91", 0.04, [("98", 8), ("99", 8), ("70", 8)]),
    ("86", 0.03, [("138", 8), ("139", 8), ("10", 8)]),
    ("81", 0.02, [("90", 8), ("80", 8), ("3", 8)]),
]

#: Premium-rate ranges that block lists often hold as prefixes: (E.164 prefix, digits after).
PREMIUM_PREFIXES: list[tuple[str, int]] = [
    ("+1900", 7),
    ("+1976", 7),
    ("+44909", 7),
    ("+44871", 7),
    ("+49900", 7),
    ("+3389", 7),
]


def _nanp_tail(rng: random.Random) -> str:
    exchange = f"{rng.randint(2, 9)}{rng.randint(0, 9)}{rng.randint(0, 9)}"
    if exchange[1:] == "11" or exchange == "555":
        exchange = "556"
    return exchange + f"{rng.randrange(10_000):04d}"


def numbers(seed: int) -> Iterator[str]:
    """An endless deterministic stream of E.164 numbers (duplicates possible; dedupe)."""
    rng = random.Random(seed)
    ccs = [c for c, _, _ in COUNTRIES]
    weights = [w for _, w, _ in COUNTRIES]
    ranges = {c: r for c, _, r in COUNTRIES}
    while True:
        cc = rng.choices(ccs, weights)[0]
        lead, n = rng.choice(ranges[cc])
        if cc == "1":
            yield f"+1{lead}{_nanp_tail(rng)}"
        else:
            yield f"+{cc}{lead}{rng.randrange(10**n):0{n}d}"


def under_prefix(prefix: str, digits: int, rng: random.Random) -> str:
    return f"{prefix}{rng.randrange(10**digits):0{digits}d}"


def national_forms(e164: str) -> list[str]:
    """Other ways a US trunk presents a NANP number (``--region US``): 11 and 10 digits."""
    if e164.startswith("+1") and len(e164) == 12:
        return [e164[1:], e164[2:]]
    return []
