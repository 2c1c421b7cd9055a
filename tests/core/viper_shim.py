"""Test support: run a MicroPython viper module under CPython with viper semantics emulated.

load_viper_module(path) compiles the module's source after rewriting every function decorated
with ``@micropython.viper`` so that its arithmetic behaves like viper's 32-bit machine words:

- every binary operation (``+ - * & | ^ << >>``) and augmented assignment result is wrapped
  to a signed 32-bit word (``>>`` of a negative word is arithmetic, as viper's ``int``);
- ``ptr8/ptr16/ptr32(obj)`` view the object's buffer as little-endian unsigned 8/16-bit or
  signed 32-bit words: a load zero-extends (ptr8/ptr16), a store keeps the low 8/16/32 bits
  whatever the buffer's own typecode is ('h' and 'H' arrays hold the same bytes);
- an index outside the buffer raises IndexError (real viper would corrupt memory: a test
  should fail loudly instead);
- ``uint(x)`` wraps to unsigned 32 bits (``int`` is left as CPython's: the kernels do not cast).
The ``micropython`` module seen by the source has ``viper``/``native`` as identity decorators.
Nothing here runs on a board; it only lets a host test check the kernels' arithmetic.
"""

import ast
import builtins
import struct
import types

_MASK = 0xFFFFFFFF


def _w32(x):
    x &= _MASK
    return x - 0x100000000 if x & 0x80000000 else x


class _Ptr:
    def __init__(self, obj, size, fmt):
        if isinstance(obj, (list, tuple, str, int)):
            raise TypeError(f"can't convert {type(obj).__name__} to a pointer")
        self._mv = memoryview(obj).cast("B")
        self._size = size
        self._fmt = fmt
        self._mask = (1 << (8 * size)) - 1

    def _at(self, i):
        i = int(i)
        if i < 0 or (i + 1) * self._size > len(self._mv):
            raise IndexError(f"viper pointer index {i} outside a {len(self._mv)}-byte buffer")
        return i * self._size

    def __getitem__(self, i):
        o = self._at(i)
        return struct.unpack_from(self._fmt, self._mv, o)[0]

    def __setitem__(self, i, v):
        o = self._at(i)
        v = int(v) & self._mask
        if self._fmt == "<i" and v & 0x80000000:
            v -= 0x100000000
        struct.pack_into(self._fmt, self._mv, o, v)


def ptr8(obj):
    return _Ptr(obj, 1, "<B")


def ptr16(obj):
    return _Ptr(obj, 2, "<H")


def ptr32(obj):
    return _Ptr(obj, 4, "<i")


def _uint(x):
    return int(x) & _MASK


def _is_viper(dec):
    return (
        isinstance(dec, ast.Attribute)
        and dec.attr == "viper"
        and isinstance(dec.value, ast.Name)
        and dec.value.id == "micropython"
    )


class _Wrap(ast.NodeTransformer):
    """Inside viper functions: BinOp -> _w32(BinOp); `x op= y` -> `x = _w32(x op y)`."""

    def visit_BinOp(self, node):
        self.generic_visit(node)
        return ast.copy_location(
            ast.Call(func=ast.Name("_w32", ast.Load()), args=[node], keywords=[]), node
        )

    def visit_AugAssign(self, node):
        self.generic_visit(node)
        if not isinstance(node.target, ast.Name):
            raise SyntaxError("viper shim: augmented assignment to a non-name")
        value = ast.BinOp(ast.Name(node.target.id, ast.Load()), node.op, node.value)
        call = ast.Call(func=ast.Name("_w32", ast.Load()), args=[value], keywords=[])
        return ast.copy_location(
            ast.Assign(targets=[ast.Name(node.target.id, ast.Store())], value=call), node
        )


class _Module(ast.NodeTransformer):
    def __init__(self):
        self.viper_functions = []

    def visit_FunctionDef(self, node):
        if any(_is_viper(d) for d in node.decorator_list):
            self.viper_functions.append(node.name)
            return _Wrap().visit(node)
        return node


def load_viper_module(path, name="viper_module"):
    """The module at `path`, executed under CPython with viper emulated (see module doc).
    Its attribute `VIPER_FUNCTIONS` lists the rewritten functions."""
    src = open(path).read()
    tree = ast.parse(src, filename=str(path))
    tr = _Module()
    tree = ast.fix_missing_locations(tr.visit(tree))
    mp = types.ModuleType("micropython")
    mp.viper = lambda f: f
    mp.native = lambda f: f
    mp.const = lambda x: x
    mod = types.ModuleType(name)
    mod.__file__ = str(path)
    ns = mod.__dict__
    ns.update(ptr8=ptr8, ptr16=ptr16, ptr32=ptr32, uint=_uint, _w32=_w32)

    def imp(n, *a, **kw):
        if n == "micropython":
            return mp
        return builtins.__import__(n, *a, **kw)

    b = dict(vars(builtins))
    b["__import__"] = imp
    ns["__builtins__"] = b
    exec(compile(tree, str(path), "exec"), ns)
    mod.VIPER_FUNCTIONS = tr.viper_functions
    return mod
