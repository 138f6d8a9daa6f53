//! Browser library (npm `h2ws`): built in issue 5.
