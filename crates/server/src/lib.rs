//! mailkeep-server
#![forbid(unsafe_code)]
