// Command kube-apiserver is upstream's kube-apiserver, built from the published k8s.io/kubernetes
// module. It is the same program as k8s.io/kubernetes/cmd/kube-apiserver (same blank imports), kept
// here as our own main package so that `go mod tidy` keeps the requirement and the build needs no
// checkout of kubernetes/kubernetes. Only the integration tests use it; see scripts/control-plane.sh.
package main

import (
	"os"
	_ "time/tzdata" // CronJob time zones, as upstream

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // --logging-format=json
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics
	_ "k8s.io/component-base/metrics/prometheus/version"  // kubernetes_build_info
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
