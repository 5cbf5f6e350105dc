// Command etcd is upstream's etcd server, built from the published go.etcd.io/etcd/server/v3 module
// (whose own main package cannot be `go install`ed because its go.mod has replace directives). Only
// the integration tests use it; see scripts/control-plane.sh.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
