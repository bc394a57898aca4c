"""The API's one schema language (I5): each parameter and object is described once, by small schema objects
that (1) check a request's decoded form parameters before any service runs — the error names the parameter,
in Stripe's envelope — (2) check a response (tests and schemathesis hold every answer to it), and (3) write
themselves as JSON Schema into the OpenAPI 3.1 document at /api/openapi.json. No second description exists:
the document, the reference page and the validation all come from here and from `endpoints.py`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kassa.forms import parse_int
from kassa.services.api.errors import ApiError

_INT64 = 2**63 - 1


@dataclass
class Schema:
    description: str = ""
    nullable: bool = False

    def _type(self) -> dict[str, Any]:  # pragma: no cover - every kind defines it
        raise NotImplementedError

    def json(self) -> dict[str, Any]:
        """This schema as JSON Schema (OpenAPI 3.1 is JSON Schema 2020-12)."""
        out = self._type()
        if self.nullable:
            if "type" in out:
                out["type"] = [out["type"], "null"]
                if "enum" in out:
                    out["enum"] = [*out["enum"], None]
            else:
                out = {"anyOf": [out, {"type": "null"}]}
        if self.description:
            out["description"] = self.description
        return out

    def check(self, value: Any, param: str) -> None:
        """A form-encoded request value (strings, or dicts for `a[b]=…`): raise Stripe's 400 naming the param."""
        if isinstance(value, dict):
            raise ApiError(400, f"Invalid {self.kind_name()}: {param} takes one value, not an object.", param=param)
        self._check_text(str(value), param)

    def _check_text(self, text: str, param: str) -> None:
        return None

    def kind_name(self) -> str:
        return "value"

    def errors(self, value: Any, path: str = "") -> list[str]:
        """A response value (JSON): what in it doesn't match, empty when all does."""
        if value is None:
            return [] if self.nullable else [f"{path or '(root)'}: null is not allowed"]
        return self._errors(value, path or "(root)")

    def _errors(self, value: Any, path: str) -> list[str]:
        return []


@dataclass
class Str(Schema):
    enum: tuple[str, ...] = ()
    max_length: int | None = 5000
    prefix: str = ""
    format: str = ""

    def kind_name(self) -> str:
        return "string"

    def _type(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "string"}
        if self.enum:
            out["enum"] = list(self.enum)
        if self.max_length is not None and not self.enum:
            out["maxLength"] = self.max_length
        if self.format:
            out["format"] = self.format
        return out

    def _check_text(self, text: str, param: str) -> None:
        if self.enum and text not in self.enum:
            raise ApiError(400, f"Invalid {param}: must be one of {', '.join(self.enum)}", param=param)
        if self.max_length is not None and len(text) > self.max_length:
            raise ApiError(400, f"Invalid {param}: must be at most {self.max_length} characters", param=param)

    def _errors(self, value: Any, path: str) -> list[str]:
        if not isinstance(value, str):
            return [f"{path}: {value!r} is not a string"]
        if self.enum and value not in self.enum:
            return [f"{path}: {value!r} is not one of {self.enum}"]
        return []


@dataclass
class Int(Schema):
    minimum: int | None = None
    maximum: int | None = None

    def kind_name(self) -> str:
        return "integer"

    def _type(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "integer"}
        if self.minimum is not None:
            out["minimum"] = self.minimum
        out["maximum"] = self.maximum if self.maximum is not None else _INT64
        return out

    def _check_text(self, text: str, param: str) -> None:
        maximum = self.maximum if self.maximum is not None else _INT64
        if parse_int(text, minimum=self.minimum, maximum=maximum) is None:
            bounds = f" between {self.minimum} and {maximum}" if self.minimum is not None else ""
            raise ApiError(400, f"Invalid integer: {param} must be a whole number{bounds}.", param=param)

    def _errors(self, value: Any, path: str) -> list[str]:
        if isinstance(value, bool) or not isinstance(value, int):
            return [f"{path}: {value!r} is not an integer"]
        if self.minimum is not None and value < self.minimum:
            return [f"{path}: {value} is below {self.minimum}"]
        return []


@dataclass
class Bool(Schema):
    def kind_name(self) -> str:
        return "boolean"

    def _type(self) -> dict[str, Any]:
        return {"type": "boolean"}

    def _check_text(self, text: str, param: str) -> None:
        if text not in ("true", "false"):
            raise ApiError(400, f"Invalid boolean: {param} must be true or false.", param=param)

    def _errors(self, value: Any, path: str) -> list[str]:
        return [] if isinstance(value, bool) else [f"{path}: {value!r} is not a boolean"]


@dataclass
class Obj(Schema):
    properties: dict[str, Schema] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    additional: Schema | bool = False  # False: unknown keys are refused; a Schema: any key, values of it

    def kind_name(self) -> str:
        return "object"

    def _type(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "object", "properties": {k: v.json() for k, v in self.properties.items()}}
        if self.required:
            out["required"] = list(self.required)
        out["additionalProperties"] = (self.additional.json() if isinstance(self.additional, Schema)
                                       else self.additional)
        return out

    def check(self, value: Any, param: str) -> None:
        if not isinstance(value, dict):
            raise ApiError(400, f"Invalid object: {param}", param=param)
        self.check_fields(value, param)

    def check_fields(self, value: dict[str, Any], prefix: str = "") -> None:
        """Top level (prefix ""): `name`; nested: `prefix[name]`, as Stripe names parameters."""
        for name, item in value.items():
            param = f"{prefix}[{name}]" if prefix else name
            schema = self.properties.get(name)
            if schema is None:
                if isinstance(self.additional, Schema):
                    schema = self.additional
                else:
                    raise ApiError(400, f"Received unknown parameter: {param}", param=param)
            schema.check(item, param)
        for name in self.required:
            if name not in value:
                param = f"{prefix}[{name}]" if prefix else name
                raise ApiError(400, f"Missing required param: {param}.", param=param)

    def _errors(self, value: Any, path: str) -> list[str]:
        if not isinstance(value, dict):
            return [f"{path}: {value!r} is not an object"]
        found = [f"{path}.{name}: missing" for name in self.required if name not in value]
        for name, item in value.items():
            schema = self.properties.get(name)
            if schema is None:
                if isinstance(self.additional, Schema):
                    schema = self.additional
                elif self.additional is False:
                    found.append(f"{path}.{name}: not in the schema")
                    continue
                else:
                    continue
            found += schema.errors(item, f"{path}.{name}")
        return found


@dataclass
class Arr(Schema):
    """A list. In a form-encoded request, `a[0][x]=…&a[1][x]=…` (indexes) or `a[]=…&a[]=…` (repeated)."""

    items: Schema = field(default_factory=Str)
    max_items: int = 100

    def kind_name(self) -> str:
        return "array"

    def _type(self) -> dict[str, Any]:
        return {"type": "array", "items": self.items.json(), "maxItems": self.max_items}

    def check(self, value: Any, param: str) -> None:
        if isinstance(value, list):
            values = value
        elif isinstance(value, dict) and all(parse_int(k, minimum=0, maximum=999) is not None for k in value):
            values = [value[k] for k in sorted(value, key=int)]
            param_of = {i: f"{param}[{k}]" for i, k in enumerate(sorted(value, key=int))}
            if len(values) > self.max_items:
                raise ApiError(400, f"Invalid array: {param} takes at most {self.max_items} items.", param=param)
            for index, item in enumerate(values):
                self.items.check(item, param_of[index])
            return
        else:
            raise ApiError(400, f"Invalid array: {param}", param=param)
        if len(values) > self.max_items:
            raise ApiError(400, f"Invalid array: {param} takes at most {self.max_items} items.", param=param)
        for item in values:
            self.items.check(item, param)

    def _errors(self, value: Any, path: str) -> list[str]:
        if not isinstance(value, list):
            return [f"{path}: {value!r} is not an array"]
        found: list[str] = []
        for index, item in enumerate(value):
            found += self.items.errors(item, f"{path}[{index}]")
        return found


# Named object schemas: `Ref("PaymentIntent")` is `#/components/schemas/PaymentIntent` in the document.
COMPONENTS: dict[str, Schema] = {}


@dataclass
class Ref(Schema):
    name: str = ""

    def _type(self) -> dict[str, Any]:
        return {"$ref": f"#/components/schemas/{self.name}"}

    def json(self) -> dict[str, Any]:
        out = self._type()
        if self.nullable:
            return {"anyOf": [out, {"type": "null"}]}
        return out

    def check(self, value: Any, param: str) -> None:
        COMPONENTS[self.name].check(value, param)

    def _errors(self, value: Any, path: str) -> list[str]:
        return COMPONENTS[self.name].errors(value, path)


@dataclass
class OneOf(Schema):
    """A response field that is one of several shapes (an id, or the object itself when expanded)."""

    choices: tuple[Schema, ...] = ()

    def _type(self) -> dict[str, Any]:
        return {"anyOf": [choice.json() for choice in self.choices]}

    def errors(self, value: Any, path: str = "") -> list[str]:
        results = [choice.errors(value, path or "(root)") for choice in self.choices]
        return [] if any(not r for r in results) else results[0]


def component(name: str, schema: Schema) -> Ref:
    COMPONENTS[name] = schema
    return Ref(name=name)


def list_of(item: Ref, url: str) -> Obj:
    """Stripe's list envelope: {"object": "list", "data": [...], "has_more": bool, "url": "/v1/…"}."""
    return Obj(properties={"object": Str(enum=("list",)), "data": Arr(items=item, max_items=100),
                           "has_more": Bool(), "url": Str()},
               required=("object", "data", "has_more", "url"), description=f"A page of {item.name} objects, newest first.")
