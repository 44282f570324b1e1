package realtime

// SocketsWithin exposes socketsWithin to the tests.
var SocketsWithin = socketsWithin
