"""How CouchDB writes a floating-point number.

CouchDB's JSON encoder (jiffy) writes a double as JavaScript writes a number
(ECMAScript's Number::toString: the shortest digits that read back as the same double, in
plain decimal while the decimal point falls within 21 digits left of it or 6 zeros right of it,
in exponent form beyond), and appends `.0` to a whole number so that it reads back as a float.
A negative zero is written as `0.0`.

orjson, which couchpy encodes with, picks the same shortest digits but switches to exponent form
earlier, from 1e16 up and below 1e-5, so a number stored and read back would change its text
(never its value) where the two rules differ:

    value        CouchDB                  orjson
    1e20         100000000000000000000.0  1e+20
    1.5e16       15000000000000000.0      1.5e+16
    1.234e-6     0.000001234              1.234e-6
    1e21         1e+21                    1e+21
    -0.0         0.0                      -0.0

`differs_from_orjson` is the cheap look at orjson's output that says whether a body may hold such
a number; `couchdb_float` writes one.
"""

from __future__ import annotations

from decimal import Decimal


def couchdb_float(x: float) -> str:
    """`x` (finite) as CouchDB's encoder writes it."""
    if x == 0.0:
        return "0.0"
    sign = "-" if x < 0 else ""
    # repr gives the shortest digits that read back as x (as ECMAScript's algorithm does)
    _, digit_tuple, exponent = Decimal(repr(abs(x))).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0")
    point = len(digit_tuple) + exponent  # x = 0.<digits> * 10**point
    k = len(digits)
    if k <= point <= 21:  # a whole number: its digits, zeros, and the float's ".0"
        text = digits + "0" * (point - k) + ".0"
    elif 0 < point <= 21:
        text = f"{digits[:point]}.{digits[point:]}"
    elif -6 < point <= 0:
        text = "0." + "0" * -point + digits
    else:
        e = point - 1
        mantissa = digits[0] + (f".{digits[1:]}" if k > 1 else "")
        text = f"{mantissa}e{'+' if e > 0 else '-'}{abs(e)}"
    return sign + text


# orjson writes exponents as e+16 ... e+20 and e-6 exactly where CouchDB writes plain decimal,
# and -0.0 where CouchDB writes 0.0. The markers also hit e+1, e+100..e+199 and e-60..e-69
# (written the same way by both) and text inside strings: a false hit only costs a walk.
# A search for one byte runs at memchr's speed, one for several bytes at about 1 GB/s here, so
# the rarer "+" is looked for first (about 2 ms for the markers of a 10 MB listing).


def differs_from_orjson(encoded: bytes) -> bool:
    """Whether orjson's encoding of a body may hold a number CouchDB writes otherwise."""
    return (b"-0.0" in encoded or b"e-6" in encoded
            or (b"+" in encoded and (b"e+1" in encoded or b"e+20" in encoded)))
