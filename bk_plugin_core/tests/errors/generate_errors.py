# Regenerates validation_errors.json (read by ../validation_errors.rs): the text pydantic v1 gives for invalid inputs.
# Run with a venv that has pydantic<2 installed:  python generate_errors.py
# Each case names a model below, the input, and str(ValidationError) for Model(**input).
import enum
import json
import os
import typing

import pydantic
from pydantic import BaseModel, Extra, Field

assert pydantic.VERSION.startswith("1."), "pydantic v1 required, got %s" % pydantic.VERSION


class Inputs(BaseModel):
    hello: str


class Flat(BaseModel):
    hello: str
    count: int
    ratio: float
    enabled: bool


class Options(BaseModel):
    name: str
    value: int = 1


class Nested(BaseModel):
    action: str
    options: Options
    tags: typing.List[str] = []
    count: int = 3
    flag: bool = True


class Color(str, enum.Enum):
    red = "red"
    green = "green"


class Paint(BaseModel):
    color: Color
    shades: typing.List[Color] = []


class Item(BaseModel):
    key: str


class Lists(BaseModel):
    names: typing.List[str]
    items: typing.List[Item] = []
    matrix: typing.List[typing.List[int]] = []
    extra: dict = {}


class Optionals(BaseModel):
    note: typing.Optional[str] = None
    limit: typing.Optional[int] = None
    required_one: str


class Mode(str, enum.Enum):
    fast = "fast"
    slow = "slow"


class RetryOptions(BaseModel):
    retries: int = 3
    backoff: float = 1.5
    mode: Mode = Mode.fast
    labels: typing.List[str] = ["a"]
    note: typing.Optional[str] = None


class WithDefaults(BaseModel):
    name: str
    options: RetryOptions = RetryOptions()


class Constrained(BaseModel):
    n: int = Field(..., ge=1, le=10, multiple_of=2)
    f: float = Field(1.0, gt=0, lt=1.5)
    s: str = Field("ab", min_length=2, max_length=4, regex="^a")
    l: typing.List[int] = Field([1], min_items=1, max_items=3, unique_items=True)
    o: typing.Optional[int] = Field(None, ge=0)
    code: str = Field("x", regex=r"^[a-z][a-z0-9_]*$", max_length=32, description="plugin code")


class Strict(BaseModel):
    a: int

    class Config:
        extra = Extra.forbid


MODELS = {m.__name__: m for m in [Inputs, Flat, Nested, Paint, Lists, Optionals, WithDefaults, Constrained, Strict]}

CASES = [
    ("missing_field", "Inputs", {}),
    ("every_field_missing", "Flat", {}),
    ("wrong_type_for_each_scalar", "Flat", {"hello": {"a": 1}, "count": "x", "ratio": "abc", "enabled": "maybe"}),
    ("string_given_a_list_and_int_given_a_fraction_in_text", "Flat", {"hello": [1], "count": "7.5", "ratio": [], "enabled": 2}),
    ("nested_model_field_missing_and_wrong", "Nested", {"action": "a", "options": {"value": "x"}}),
    ("nested_model_given_a_string", "Nested", {"action": "a", "options": "nope"}),
    ("list_items_and_lists_of_lists", "Lists", {"names": ["a", {"x": 1}], "matrix": [[1, "b"], "c"]}),
    ("list_given_a_string_and_dict_given_a_list", "Lists", {"names": "abc", "extra": []}),
    ("list_of_models_item_missing_a_field", "Lists", {"names": [], "items": [{"key": "k"}, {}]}),
    ("enum_value_and_enum_list_item", "Paint", {"color": "blue", "shades": ["red", "purple"]}),
    ("null_for_a_model_a_string_and_a_defaulted_field", "Nested", {"action": None, "options": None, "flag": None}),
    ("null_for_optional_fields_is_fine", "Optionals", {"note": None, "limit": None}),
    ("several_errors_at_once_in_field_order", "Nested", {"flag": "perhaps", "tags": ["x", {}], "options": {"name": None}, "count": "many"}),
    ("coerced_values_are_no_error", "Flat", {"hello": 12, "count": " 7 ", "ratio": "1.5", "enabled": "yes"}),
    # nested defaults: an omitted model field and `{}` both take the field defaults
    ("nested_model_omitted_takes_its_field_defaults", "WithDefaults", {"name": "x"}),
    ("nested_model_empty_takes_its_field_defaults", "WithDefaults", {"name": "x", "options": {}}),
    ("nested_model_partly_given", "WithDefaults", {"name": "x", "options": {"retries": "5", "mode": "slow"}}),
    ("null_for_a_defaulted_nested_model", "WithDefaults", {"name": "x", "options": None}),
    ("enum_null_and_missing_reported_together", "WithDefaults", {"options": {"retries": None, "mode": "medium", "labels": [None]}}),
    # constraints
    ("below_ge", "Constrained", {"n": 0}),
    ("above_le", "Constrained", {"n": 11}),
    ("not_a_multiple", "Constrained", {"n": 3}),
    ("lower_bounds_and_lengths", "Constrained", {"n": 4, "f": 0, "s": "a", "l": []}),
    ("upper_bounds_and_lengths", "Constrained", {"n": 4, "f": 2, "s": "abcde", "l": [1, 2, 3, 4]}),
    ("exclusive_upper_bound_itself", "Constrained", {"n": "4", "f": "1.5"}),
    ("regex_and_duplicates", "Constrained", {"n": 4, "s": "ba", "l": [1, 1]}),
    ("list_checked_before_its_items", "Constrained", {"n": 4, "l": ["x", 1, 1]}),
    ("items_checked_when_the_list_fits", "Constrained", {"n": 4, "l": ["x"]}),
    ("optional_constrained_given", "Constrained", {"n": 4, "o": -1}),
    ("optional_constrained_null", "Constrained", {"n": 4, "o": None}),
    ("length_before_regex", "Constrained", {"n": 4, "s": "zzzzzz", "code": "9lives"}),
    ("lengths_count_characters", "Constrained", {"n": 4, "s": "a中文", "code": "ok_1"}),
    ("regex_matches_at_the_start", "Constrained", {"n": 4, "s": "abc", "code": "a-b"}),
    ("coerced_then_constrained", "Constrained", {"n": "12", "s": 12, "l": ["1", 1]}),
    ("every_constraint_satisfied", "Constrained", {"n": 10, "f": 1.25, "s": "abcd", "l": [1, 2, 3], "o": 0, "code": "ok"}),
    ("extra_fields_refused_when_forbidden", "Strict", {"a": 1, "b": 2, "c": None}),
]


def main():
    out = []
    for name, model, data in CASES:
        case = {"name": name, "model": model, "input": data}
        try:
            valid = MODELS[model](**data)
            case["error"] = None
            if model in ("WithDefaults", "Constrained"):
                case["output"] = json.loads(valid.json())
        except pydantic.ValidationError as e:
            case["error"] = str(e)
        out.append(case)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "validation_errors.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
