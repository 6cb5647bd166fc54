# Regenerates validation_errors.json (read by ../validation_errors.rs): the text pydantic v1 gives for invalid inputs.
# Run with a venv that has pydantic<2 installed:  python generate_errors.py
# Each case names a model below, the input, and str(ValidationError) for Model(**input).
import enum
import json
import os
import typing

import pydantic
from pydantic import BaseModel

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


MODELS = {m.__name__: m for m in [Inputs, Flat, Nested, Paint, Lists, Optionals]}

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
]


def main():
    out = []
    for name, model, data in CASES:
        try:
            MODELS[model](**data)
            text = None
        except pydantic.ValidationError as e:
            text = str(e)
        out.append({"name": name, "model": model, "input": data, "error": text})
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "validation_errors.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
