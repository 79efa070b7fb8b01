"""The kernel modules: kernel discovery, rendering the templates, kbuild, the hand-in archive."""
