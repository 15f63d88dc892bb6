//! Config merge: placeholder
