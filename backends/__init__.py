"""Built-in array backends of anyglm (installed as ``anyglm.backends``)."""

if __name__ != "anyglm.backends":  # the source folder is not a package of its own
    raise ImportError("backends/ is part of anyglm's source tree; import anyglm.backends instead")
