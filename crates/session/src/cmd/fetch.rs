//! (selected-commands helper)
