"""Built-in models of anyglm (installed as ``anyglm.plugins``)."""

if __name__ != "anyglm.plugins":  # the source folder is not a package of its own
    raise ImportError("plugins/ is part of anyglm's source tree; import anyglm.plugins instead")
