//! Agent tools (bash, read, write, edit, list, glob, grep), built only on the Runtime trait.
