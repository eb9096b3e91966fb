from allo_ext.compat import (ConstExpr, Fixed, Float, Index, Int, Stateful, UFixed, UInt, bfloat16, bool, float16,  # noqa: F401
                             float32, float64, index, int1, int2, int4, int8, int16, int32, int64, uint1, uint2, uint4,
                             uint8, uint16, uint32, uint64, int128, Struct)
from allo_ext.compat import __getattr__  # noqa: F401
