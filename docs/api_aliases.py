"""Resolve cross-references to a public object under any of its import paths.

The API reference documents each object once, under the name users import it by
(``convexrelu.ReLUNet``, ``convexrelu.solvers.FistaSolver``, ...). Docstrings also refer
to the defining module (``convexrelu.network.ReLUNet``) or to a subpackage
(``convexrelu.certificates.certify``). This extension resolves such a reference to the
documented object when both names import to the very same object, so nitpicky builds
(``-n``) check our own references without listing every alias by hand.
"""

import importlib


def _import(name):
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def _resolve(app, env, node, contnode):
    if node.get("refdomain") != "py":
        return None
    domain = env.get_domain("py")
    reftarget = node.get("reftarget", "")
    target = reftarget
    modname = node.get("py:module") or ""
    if not target.startswith("convexrelu") and modname.startswith("convexrelu"):
        target = f"{modname}.{target}"
    obj = _import(target) if target.startswith("convexrelu") else None
    if obj is not None:
        # the same object documented under another import path
        short = target.rsplit(".", 1)[-1]
        hits = [name for name in domain.objects
                if name.rsplit(".", 1)[-1] == short and name != target
                and _import(name) is obj]
    else:
        # an unqualified name (``ConservationMonitor``, ``Loss.encode_targets``):
        # resolve it when exactly one documented object of ours ends with it
        hits = [name for name in domain.objects
                if name.startswith("convexrelu") and name.endswith("." + reftarget)]
    hits = [name for name in hits if "._" not in name]   # not autodoc's canonical aliases
    objs = {id(_import(name)) for name in hits}
    if not hits or len(objs) != 1:
        return None
    name = min(hits, key=len)
    newnode = node.deepcopy()
    newnode["reftarget"] = name
    return domain.resolve_xref(env, node["refdoc"], app.builder,
                               domain.objects[name].objtype, name, newnode, contnode)


def setup(app):
    app.connect("missing-reference", _resolve)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
