//! The controllers without a terminal: a cockpit on a temp home and a fixed environment, fed
//! messages as the loop would feed them, with the channel standing in for the loop.
