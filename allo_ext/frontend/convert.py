"""The conversion the frontend inserts where a node reads a tensor of another type (mixed precision)."""
from ..lang import grid


def convert_kernel(S, D, shape):
    shape = tuple(shape)

    def convert(X: S[shape]) -> D[shape]:
        Z: D[shape]
        for i in grid(*shape, name="convert"):
            Z[i] = D(X[i])
        return Z

    return convert
