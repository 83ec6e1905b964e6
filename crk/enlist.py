"""Enlist: treat "one value or a list of values" uniformly, and give back the same form."""


class Enlist(list):
    """A list made from a single value or a list/tuple; ``delist`` returns the caller's form."""

    def __init__(self, value):
        self.listed = isinstance(value, (list, tuple))
        super().__init__(value if self.listed else [value])

    def delist(self, values):
        values = list(values)
        if self.listed:
            return values
        return values[0]
