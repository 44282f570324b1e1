package server

import "standin/server/bookings"

// RepairEvery is how often a running server finishes half-written
// bookings, for the tests that wait for it.
const RepairEvery = bookings.RepairEvery
