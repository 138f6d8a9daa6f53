//! The h2ws development server: built in issue 4.
