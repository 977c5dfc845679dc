"""JSON nesting and array limits, checked on the raw bytes before any parser recurses into them."""

from __future__ import annotations


class TooComplex(ValueError):
    """The JSON nests deeper or holds longer arrays than intake accepts."""


_OPEN = {ord("["), ord("{")}
_CLOSE = {ord("]"), ord("}")}
_QUOTE, _BACKSLASH, _COMMA, _BRACKET = ord('"'), ord("\\"), ord(","), ord("[")


def check(body: bytes, *, max_depth: int, max_items: int) -> None:
    """Raise TooComplex when `body` nests over `max_depth` or an array has over `max_items` items.

    A single pass over the bytes, outside strings: cheap, and safe where a recursive parser is not.
    Malformed JSON is left for the parser to report.
    """
    stack: list[list[int]] = []  # per open container: [is an array, commas seen]
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == _BACKSLASH:
                escaped = True
            elif byte == _QUOTE:
                in_string = False
            continue
        if byte == _QUOTE:
            in_string = True
        elif byte in _OPEN:
            stack.append([byte == _BRACKET, 0])
            if len(stack) > max_depth:
                raise TooComplex(f"JSON nests deeper than {max_depth} levels")
        elif byte in _CLOSE:
            if stack:
                stack.pop()
        elif byte == _COMMA and stack and stack[-1][0]:
            stack[-1][1] += 1
            if stack[-1][1] >= max_items:
                raise TooComplex(f"a JSON array holds more than {max_items} items")
