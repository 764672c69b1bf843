//! The conformance suite every backend runs from its own tests.
