package main

import (
	"path/filepath"
	"strconv"

	"standin/scripts/internal/benchproc"
)

// console is the standin process under measurement.
type console = benchproc.Proc

// startConsole runs bin in dir as `standin` runs on one machine: the
// embedded database in a fresh data directory, the demo facility, sinks
// allowed to deliver to loopback only. It returns once the console is
// ready.
func startConsole(bin, dir string) (*console, error) {
	port, err := benchproc.FreePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	url := "http://" + addr
	c, err := benchproc.Start("standin", bin, filepath.Join(dir, "console.log"), []string{
		"STANDIN_ADDR=" + addr, "STANDIN_PUBLIC_URL=" + url, "STANDIN_DATA_DIR=" + filepath.Join(dir, "data"),
		"STANDIN_DEMO=true", "STANDIN_SINK_ALLOW=127.0.0.1"})
	if err != nil {
		return nil, err
	}
	c.URL = url
	if err := c.WaitReady(); err != nil {
		_ = c.Stop()
		return nil, err
	}
	return c, nil
}
