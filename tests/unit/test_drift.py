"""interchange.drift: field sets, fingerprints and their differences."""

from decimal import Decimal

from interchange import drift


def test_field_types_fold_null_and_numbers():
    _, fields = drift.fingerprint([{"a": 1, "b": None, "c": "x"}, {"a": 2.5, "b": None}])
    assert fields == {"a": "number", "b": "null", "c": "string"}


def test_fingerprint_is_stable_and_order_free():
    one = drift.fingerprint([{"a": 1, "b": "x"}])[0]
    assert one == drift.fingerprint([{"b": "y", "a": 7}])[0]
    assert one != drift.fingerprint([{"a": 1}])[0]


def test_custom_types_and_nested_fields():
    def type_name(v):
        return "decimal" if isinstance(v, Decimal) else drift.json_type(v)

    _, fields = drift.fingerprint([{"p": Decimal("1.5"), "n": 1}], type_name=type_name,
                                  fold_numbers=False)
    assert fields == {"n": "integer", "p": "decimal"}
    _, nested = drift.fingerprint(
        [{"properties": {"email": "a@b.co"}}],
        expand=lambda name, value: ((f"{name}.{k}", v) for k, v in value.items()),
    )
    assert nested == {"properties": "object", "properties.email": "string"}


def test_diff_ignores_null_as_a_type():
    old = {"a": "string", "b": "integer", "c": "null", "gone": "string"}
    new = {"a": "integer", "b": "integer", "c": "string", "fresh": "boolean"}
    assert drift.diff_fields(old, new) == {
        "added": {"fresh": "boolean"},
        "missing": {"gone": "string"},
        "retyped": {"a": {"old": "string", "new": "integer"}},
    }
