"""What a newcomer starts with: a tiny runnable model (``aether tiny-model``), the interactive
viewer of saved results (``aether view``) and the web app (``aether app``).

Nothing here is imported by the rest of the library; the heavy optional packages (rerun-sdk,
gradio) are imported only when their command runs.
"""
