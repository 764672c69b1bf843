//! Workspace lifecycle (create, init, list, delete, rename, fork) over the Runtime trait.
