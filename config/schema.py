"""OpenAPI generation: unique component names for the one-APIView-per-operation style."""

from drf_spectacular.openapi import AutoSchema


class OfferlabAutoSchema(AutoSchema):
    """Names a serializer nested in a view after the view.

    Every view has its own `InputSerializer` / `OutputSerializer`; without the view's name they
    would all become the same "Input"/"Output" component and overwrite each other.
    `AssignmentCreateApi.InputSerializer` becomes `AssignmentCreateInput(Request)`.
    """

    def get_serializer_name(self, serializer, direction) -> str:
        name = super().get_serializer_name(serializer, direction)
        outer = type(serializer).__qualname__.rpartition(".")[0].rpartition(".")[2]
        if outer and not outer.startswith("<"):
            return outer.removesuffix("Api") + name
        return name
