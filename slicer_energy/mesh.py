"""A NumPy-only triangle mesh and STL/3MF readers, so ``predict`` never imports trimesh.

``import trimesh`` costs about 0.6 s (it pulls in scipy.spatial, networkx, ...), more than
the model itself on a small part. :class:`Mesh` gives what the model reads from a mesh
(triangles, bounds, volume, normals, face adjacency) with trimesh's own formulas, so a part
read here predicts bit for bit as one read by trimesh. Files or repairs it does not handle
(OBJ/PLY, 3MF extensions, hole filling, winding fixes) go through trimesh
(:meth:`Mesh.to_trimesh`, :meth:`Mesh.from_trimesh`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # zipfile and ElementTree are imported by read_3mf (~14 ms an STL never needs)
    from xml.etree import ElementTree

# trimesh's tolerances (trimesh.constants.tol): merge distance and "zero" norm.
MERGE_DIGITS = 8
TOL_MERGE = 1e-8
TOL_ZERO = float(np.finfo(np.float64).resolution * 100)

_STL_RECORD = np.dtype([("normal", "<f4", (3,)), ("v", "<f4", (3, 3)), ("attr", "<u2")])
_STL_HEAD = 84
_3MF_CORE = "http://schemas.microsoft.com/3dmanufacturing/core/2015/02"
_3MF_MODEL_REL = "http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"


class Mesh:
    """Vertices (n, 3) float64 and faces (m, 3) int64, with the derived arrays the model uses.

    Derived arrays are computed on first use and forgotten when the mesh changes
    (every mutation goes through a method here).
    """

    def __init__(self, vertices: Any, faces: Any) -> None:
        self.vertices = np.ascontiguousarray(vertices, dtype=np.float64).reshape(-1, 3)
        self.faces = np.ascontiguousarray(faces, dtype=np.int64).reshape(-1, 3)
        self._cache: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"<Mesh {len(self.vertices)} vertices, {len(self.faces)} faces>"

    def _cached(self, key: str, make: Any) -> Any:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def _set(self, vertices: np.ndarray | None = None, faces: np.ndarray | None = None) -> None:
        if vertices is not None:
            self.vertices = np.ascontiguousarray(vertices, dtype=np.float64)
        if faces is not None:
            self.faces = np.ascontiguousarray(faces, dtype=np.int64)
        self._cache.clear()

    def replace(self, vertices: Any, faces: Any) -> None:
        """Swap in new vertex and face arrays (e.g. from a trimesh repair)."""
        self._set(np.asarray(vertices), np.asarray(faces))

    # --- conversion -------------------------------------------------------------------
    @classmethod
    def from_trimesh(cls, tm: Any) -> Mesh:
        """A light copy of a trimesh mesh (vertices and faces only)."""
        return cls(np.array(tm.vertices, dtype=np.float64), np.array(tm.faces, dtype=np.int64))

    def to_trimesh(self) -> Any:
        """The same mesh as a ``trimesh.Trimesh`` (imports trimesh: about 0.6 s)."""
        import trimesh

        return trimesh.Trimesh(self.vertices.copy(), self.faces.copy(), process=False)

    def copy(self) -> Mesh:
        return Mesh(self.vertices.copy(), self.faces.copy())

    def export(self, *args: Any, **kwargs: Any) -> Any:
        """Write the mesh with trimesh's exporters (STL, 3MF, ...)."""
        return self.to_trimesh().export(*args, **kwargs)

    # --- geometry (trimesh's formulas, so results agree to the bit) ---------------------
    @property
    def is_empty(self) -> bool:
        return len(self.faces) == 0 or len(self.vertices) == 0

    @property
    def triangles(self) -> np.ndarray:
        return self._cached("triangles", lambda: self.vertices[self.faces])

    @property
    def triangles_cross(self) -> np.ndarray:
        def make() -> np.ndarray:
            tri = self.triangles
            vectors = tri[:, 1:, :] - tri[:, :2, :]
            return np.cross(vectors[:, 0], vectors[:, 1])

        return self._cached("cross", make)

    @property
    def area_faces(self) -> np.ndarray:
        return np.sqrt((self.triangles_cross**2).sum(axis=1)) / 2.0

    @property
    def face_normals(self) -> np.ndarray:
        """Unit normals; zero for faces whose cross product is below trimesh's zero."""

        def make() -> np.ndarray:
            c = self.triangles_cross
            norm = np.sqrt(np.dot(c * c, [1.0, 1.0, 1.0]))
            valid = norm > TOL_ZERO
            norm[valid] **= -1
            out = np.zeros((len(c), 3))
            out[valid] = (c * norm.reshape((-1, 1)))[valid]
            return out

        return self._cached("normals", make)

    @property
    def volume(self) -> float:
        """Signed enclosed volume by the divergence theorem (trimesh's mass_properties)."""

        def make() -> float:
            if self.is_empty:
                return 0.0
            tri = self.triangles
            f1 = tri[:, 0, 0] + tri[:, 1, 0] + tri[:, 2, 0]
            integral = np.zeros((1, len(f1)))
            integral[0] = self.triangles_cross[:, 0] * f1
            return float(integral.sum(axis=1)[0] / 6.0)

        return self._cached("volume", make)

    @property
    def referenced_vertices(self) -> np.ndarray:
        ref = np.zeros(len(self.vertices), dtype=bool)
        ref[self.faces] = True
        return ref

    @property
    def bounds(self) -> np.ndarray | None:
        v = self.vertices[self.referenced_vertices]
        if len(v) == 0:
            return None
        return np.array([v.min(axis=0), v.max(axis=0)])

    @property
    def extents(self) -> np.ndarray | None:
        b = self.bounds
        return None if b is None else np.ptp(b, axis=0)

    # --- topology ---------------------------------------------------------------------
    @property
    def edges(self) -> np.ndarray:
        """Directed edges, three per face: (0, 1), (1, 2), (2, 0)."""
        return self.faces[:, [0, 1, 1, 2, 2, 0]].reshape((-1, 2))

    @property
    def edges_sorted(self) -> np.ndarray:
        return np.sort(self.edges, axis=1)

    def _edge_groups(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(order, start, count): edges_sorted grouped by value, each group in file order."""

        def make() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            es = self.edges_sorted
            key = es[:, 0] * np.int64(max(len(self.vertices), 1)) + es[:, 1]
            order = np.argsort(key, kind="stable")
            k = key[order]
            start = np.flatnonzero(np.r_[True, k[1:] != k[:-1]]) if len(k) else np.zeros(0, int)
            count = np.diff(np.r_[start, len(k)])
            return order, start, count

        return self._cached("edge_groups", make)

    @property
    def edges_unique(self) -> np.ndarray:
        order, start, _ = self._edge_groups()
        return self.edges_sorted[order[start]]

    def open_edge_count(self) -> int:
        """Edges used by exactly one face: the boundary of a hole."""
        return int((self._edge_groups()[2] == 1).sum())

    def _pairs(self) -> np.ndarray:
        """Indices into ``edges`` of the edges used by exactly two faces, (k, 2)."""
        order, start, count = self._edge_groups()
        two = start[count == 2]
        return np.stack([order[two], order[two + 1]], axis=1)

    @property
    def is_watertight(self) -> bool:
        if self.is_empty:
            return False
        return len(self._pairs()) * 2 == len(self.edges)

    @property
    def is_winding_consistent(self) -> bool:
        """Each edge shared by two faces runs in opposite directions in them."""
        if self.is_empty:
            return False
        e = self.edges[self._pairs()]  # (k, 2 uses, 2 ends)
        return bool(np.equal(e[:, 0, 1], e[:, 1, 0]).all())

    @property
    def face_adjacency(self) -> np.ndarray:
        """Pairs of faces sharing an edge (edges used by exactly two faces)."""
        adj = self._pairs() // 3
        adj = adj[adj[:, 0] != adj[:, 1]]
        return np.sort(adj, axis=1)

    @property
    def face_adjacency_edges(self) -> np.ndarray:
        pairs = self._pairs()
        keep = pairs[:, 0] // 3 != pairs[:, 1] // 3
        return self.edges_sorted[pairs[keep, 0]]

    @property
    def face_adjacency_angles(self) -> np.ndarray:
        """Unsigned angle (rad) between the normals of adjacent faces."""
        pairs = self.face_normals[self.face_adjacency]
        dots = np.dot(pairs[:, 0] * pairs[:, 1], [1.0, 1.0, 1.0])
        return np.abs(np.arccos(np.clip(dots, -1.0, 1.0)))

    @property
    def body_count(self) -> int:
        """Connected groups of vertices (through edges), as trimesh counts bodies."""
        label = vertex_components(len(self.vertices), self.edges)
        return int((label == np.arange(len(label))).sum())  # one root per component

    # --- edits (trimesh's semantics) ----------------------------------------------------
    def merge_vertices(self) -> None:
        """Merge referenced vertices equal to 1e-8, keeping each one's first occurrence."""
        if len(self.vertices) == 0:
            return
        ref = self.referenced_vertices
        key = (self.vertices * (10**MERGE_DIGITS)).round().astype(np.int64)[ref]
        # group equal rows (a stable lexsort: 10x faster than np.unique(axis=0))
        srt = np.lexsort(key.T[::-1])
        ks = key[srt]
        new = np.r_[True, (ks[1:] != ks[:-1]).any(axis=1)]
        first = srt[new]  # stable: each group's first occurrence
        inv = np.empty(len(key), dtype=np.int64)
        inv[srt] = np.cumsum(new) - 1
        order = np.argsort(first)  # unique rows in order of first occurrence
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        inverse = np.zeros(len(self.vertices), dtype=np.int64)
        inverse[ref] = rank[inv.reshape(-1)]
        mask = np.flatnonzero(ref)[first[order]]
        self._set(self.vertices[mask], inverse[self.faces])

    def nondegenerate_faces(self, height: float = TOL_MERGE) -> np.ndarray:
        """Faces whose two oriented-box sides (area / edge length) both exceed ``height``."""
        tri = self.triangles
        areas = self.area_faces
        box = np.zeros((len(tri), 2))
        for col, edge in enumerate((tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])):
            length = (edge**2).sum(axis=1) ** 0.5
            nz = length > TOL_MERGE
            box[:, col][nz] = (areas[nz] * 2) / length[nz]
        return (box > height).all(axis=1)

    def update_faces(self, mask: np.ndarray) -> None:
        self._set(faces=self.faces[mask])

    def remove_unreferenced_vertices(self) -> None:
        ref = self.referenced_vertices
        if ref.all():
            return
        inverse = np.zeros(len(self.vertices), dtype=np.int64)
        inverse[ref] = np.arange(int(ref.sum()))
        self._set(self.vertices[ref], inverse[self.faces])

    def invert(self) -> Mesh:
        """Reverse every face's winding (normals and volume change sign)."""
        self._set(faces=np.fliplr(self.faces))
        return self

    def apply_translation(self, translation: Any) -> Mesh:
        t = np.asarray(translation, dtype=np.float64).reshape(3)
        # trimesh skips transforms within 1e-8 of the identity
        if float(np.ptp(np.r_[t, 0.0])) < 1e-8:
            return self
        self._set(self.vertices + t)
        return self

    def apply_scale(self, scale: float) -> Mesh:
        s = float(scale)
        if abs(s - 1.0) < 1e-8:
            return self
        self._set(self.vertices * s)
        return self

    def apply_transform(self, matrix: Any) -> Mesh:
        """Apply a 4×4 homogeneous transform; a mirroring one also flips the winding."""
        m = np.asarray(matrix, dtype=np.float64)
        self._set(transform_points(self.vertices, m))
        if np.linalg.det(m[:3, :3]) < 0:
            self._set(faces=np.fliplr(self.faces))
        return self


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Points (n, 3) through a 4×4 homogeneous matrix, the way trimesh does it."""
    stack = np.column_stack((points, np.ones(len(points))))
    return np.dot(matrix, stack.T).T[:, :3]


def vertex_components(n: int, edges: np.ndarray) -> np.ndarray:
    """Component label (its smallest vertex) of each of ``n`` vertices joined by ``edges``.

    Vectorised union-find: hook every edge's larger root onto its smaller one, then
    compress paths by pointer jumping; repeat until no edge joins two roots.
    """
    label = np.arange(n, dtype=np.int64)
    a, b = np.asarray(edges, dtype=np.int64).T if len(edges) else (np.zeros(0, int),) * 2
    while True:
        la, lb = label[a], label[b]
        diff = la != lb
        if not diff.any():
            return label
        lo, hi = np.minimum(la[diff], lb[diff]), np.maximum(la[diff], lb[diff])
        np.minimum.at(label, hi, lo)
        while True:  # pointer jumping until every vertex points at a root
            nxt = label[label]
            if np.array_equal(nxt, label):
                break
            label = nxt
        a, b = a[diff], b[diff]


# --- readers --------------------------------------------------------------------------
class Unsupported(Exception):
    """The light reader does not handle this file; read it with trimesh instead."""


def read_stl(path: Path) -> Mesh:
    """Binary or ASCII STL (one solid) as an unmerged triangle soup, in file units."""
    data = path.read_bytes()
    if len(data) >= _STL_HEAD:
        count = int(np.frombuffer(data, "<u4", 1, 80)[0])
        if len(data) == _STL_HEAD + _STL_RECORD.itemsize * count:
            rec = np.frombuffer(data, _STL_RECORD, count, _STL_HEAD)
            v = rec["v"].reshape((-1, 3)).astype(np.float64)
            return Mesh(v, np.arange(len(v)).reshape((-1, 3)))
    return _read_stl_ascii(data)


def _read_stl_ascii(data: bytes) -> Mesh:
    try:
        text = data.decode("ascii").lower()
    except UnicodeDecodeError:
        raise Unsupported("not ASCII") from None
    if text.count("endsolid") != 1 or not text.lstrip().startswith("solid"):
        raise Unsupported("not a single-solid ASCII STL")
    body = text[: text.find("endsolid")]
    pieces = body.split("vertex")[1:]
    try:
        v = np.array(" ".join(p[: p.find("\n")] for p in pieces).split(), dtype=np.float64)
    except ValueError:
        raise Unsupported("unparsable vertex line") from None
    if len(v) == 0 or len(v) % 9:
        raise Unsupported("vertex count is not a multiple of 3")
    v = v.reshape((-1, 3))
    return Mesh(v, np.arange(len(v)).reshape((-1, 3)))


def _tf(attr: str | None) -> np.ndarray:
    """A 3MF ``transform`` attribute (12 numbers, row-vector convention) as a 4×4 matrix."""
    m = np.eye(4)
    if attr:
        vals = np.array(attr.split(), dtype=np.float64)  # ValueError: caller's Unsupported
        if vals.size != 12:
            raise Unsupported("malformed transform")
        m[:3, :] = vals.reshape((4, 3)).T
    return m


def _model_name(zf: Any) -> str:
    """The 3D model part named by the package relationships (usually /3D/3dmodel.model)."""
    from xml.etree import ElementTree

    try:
        rels = ElementTree.fromstring(zf.read("_rels/.rels"))
        for rel in rels:
            if rel.get("Type") == _3MF_MODEL_REL and rel.get("Target"):
                return rel.get("Target", "").lstrip("/")
    except (KeyError, ElementTree.ParseError):
        pass
    return "3D/3dmodel.model"


def _object_mesh(obj: ElementTree.Element, ns: dict[str, str]) -> Mesh | None:
    mesh = obj.find("c:mesh", ns)
    if mesh is None:
        return None
    xyz = [(e.get("x"), e.get("y"), e.get("z")) for e in mesh.iterfind("c:vertices/c:vertex", ns)]
    tri = [
        (e.get("v1"), e.get("v2"), e.get("v3")) for e in mesh.iterfind("c:triangles/c:triangle", ns)
    ]
    v = np.array(xyz, dtype=np.float64).reshape((-1, 3))  # ValueError: caller's Unsupported
    f = np.array(tri, dtype=np.int64).reshape((-1, 3))
    if len(f) and (f.min() < 0 or f.max() >= len(v)):
        raise Unsupported("triangle index out of range")
    return Mesh(v, f)


def _model_root(path: Path) -> ElementTree.Element:
    import zipfile
    from xml.etree import ElementTree

    try:
        with zipfile.ZipFile(path) as zf:
            return ElementTree.fromstring(zf.read(_model_name(zf)))
    except Exception as exc:  # a damaged zip raises many types (zlib, EOF, ...)
        raise Unsupported(f"unreadable 3MF package: {exc}") from None


def read_3mf(path: Path) -> Mesh:
    """The build items of a core-spec 3MF (millimetres), placed by their transforms."""
    root = _model_root(path)
    if root.tag != f"{{{_3MF_CORE}}}model" or root.get("unit", "millimeter") != "millimeter":
        raise Unsupported("not a millimetre core 3MF model")
    ns = {"c": _3MF_CORE}
    objects = {o.get("id"): o for o in root.iterfind("c:resources/c:object", ns)}
    parts: list[Mesh] = []

    def place(ref: ElementTree.Element, parent: np.ndarray, depth: int) -> None:
        if any(k.endswith("}path") for k in ref.attrib):  # production extension
            raise Unsupported("object in another model part")
        obj = objects.get(ref.get("objectid"))
        if obj is None or depth > 16:
            raise Unsupported("undefined or cyclic object")
        m = parent @ _tf(ref.get("transform"))
        mesh = _object_mesh(obj, ns)
        if mesh is not None:
            if not np.allclose(m, np.eye(4), rtol=0.0, atol=1e-8):
                mesh.apply_transform(m)
            parts.append(mesh)
        for comp in obj.iterfind("c:components/c:component", ns):
            place(comp, m, depth + 1)

    try:
        for item in root.iterfind("c:build/c:item", ns):
            place(item, np.eye(4), 0)
    except (ValueError, TypeError, OverflowError):
        raise Unsupported("malformed number in the model") from None
    return concatenate(parts)


def concatenate(meshes: list[Mesh]) -> Mesh:
    """One mesh holding all of ``meshes`` (faces re-indexed)."""
    if not meshes:
        return Mesh(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64))
    offsets = np.cumsum([0] + [len(m.vertices) for m in meshes[:-1]])
    return Mesh(
        np.concatenate([m.vertices for m in meshes]),
        np.concatenate([m.faces + o for m, o in zip(meshes, offsets, strict=True)]),
    )
