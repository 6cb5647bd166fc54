# Regenerates the expected JSON Schemas with pydantic v1.
# Run with a venv that has pydantic<2 installed:  python generate.py
# It writes the *.json files beside itself (one file per model below).
import enum
import json
import os
import typing

import pydantic
from pydantic import BaseModel, Field

assert pydantic.VERSION.startswith("1."), "pydantic v1 required, got %s" % pydantic.VERSION


class Flat(BaseModel):
    hello: str
    count: int
    ratio: float
    enabled: bool


class Defaults(BaseModel):
    interval: int = Field(default=1, description="poll interval seconds")
    polls: int = Field(default=1, description="number of POLL rounds before success")
    fail_on_poll: bool = Field(default=False, description="raise self.Error in the last POLL round")
    tags: typing.List[str] = []
    flag: bool = True
    name: str = "x"


class Optionals(BaseModel):
    note: typing.Optional[str] = None
    limit: typing.Optional[int] = None
    required_one: str


# the "1.5.0" fixture
class Options(BaseModel):
    name: str
    value: int = 1


class Nested(BaseModel):
    action: str = Field(title="动作", description="what to do")
    options: Options
    tags: typing.List[str] = []
    count: int = Field(default=3, description="how many")
    flag: bool = True


class Color(str, enum.Enum):
    red = "red"
    green = "green"


class Paint(BaseModel):
    color: Color
    shades: typing.List[Color] = []


class Documented(BaseModel):
    task_name: str = Field(description="the task to run")
    biz_id: int = Field(default=0, title="业务 ID")
    executor: str = Field(title="任务执行人")


class Item(BaseModel):
    key: str


class Lists(BaseModel):
    names: typing.List[str]
    items: typing.List[Item] = []
    matrix: typing.List[typing.List[int]] = []
    extra: dict = {}


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
    code: str = Field(..., regex=r"^[a-z][a-z0-9_]*$", max_length=32, description="plugin code")


OUTPUTS = {
    "flat.json": Flat,
    "defaults.json": Defaults,
    "optional.json": Optionals,
    "nested.json": Nested,
    "enums.json": Paint,
    "documented.json": Documented,
    "lists.json": Lists,
    "nested_defaults.json": WithDefaults,
    "constraints.json": Constrained,
}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    for filename, model in OUTPUTS.items():
        path = os.path.join(here, filename)
        with open(path, "w", encoding="utf-8") as f:
            f.write(json.dumps(model.schema(), indent=2, ensure_ascii=False, sort_keys=False))
            f.write("\n")
        print("wrote", path)


if __name__ == "__main__":
    main()
