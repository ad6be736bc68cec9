// crdcheck validates Prometheus Operator resources (ServiceMonitor, PrometheusRule) in
// multi-document YAML files against the operator's Go types: unknown fields and wrong types
// fail. kubernetes-validate has no schemas for CRDs; the types are what the CRDs are
// generated from. Documents of other kinds are skipped; it prints how many it checked.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

func main() {
	checked := 0
	for _, path := range os.Args[1:] {
		data, err := os.ReadFile(path)
		if err != nil {
			fail("%v", err)
		}
		reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
		for {
			doc, err := reader.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				fail("%s: %v", path, err)
			}
			var meta struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
				Metadata   struct {
					Name string `json:"name"`
				} `json:"metadata"`
			}
			if err := yaml.Unmarshal(doc, &meta); err != nil {
				fail("%s: %v", path, err)
			}
			var target any
			switch meta.Kind {
			case "ServiceMonitor":
				target = &monitoringv1.ServiceMonitor{}
			case "PrometheusRule":
				target = &monitoringv1.PrometheusRule{}
			default:
				continue
			}
			if meta.APIVersion != "monitoring.coreos.com/v1" {
				fail("%s: %s %s: apiVersion %q, want monitoring.coreos.com/v1", path, meta.Kind, meta.Metadata.Name, meta.APIVersion)
			}
			if err := yaml.UnmarshalStrict(doc, target); err != nil {
				fail("%s: %s %s: %v", path, meta.Kind, meta.Metadata.Name, err)
			}
			if sm, ok := target.(*monitoringv1.ServiceMonitor); ok && len(sm.Spec.Endpoints) == 0 {
				fail("%s: ServiceMonitor %s has no endpoints", path, meta.Metadata.Name)
			}
			if pr, ok := target.(*monitoringv1.PrometheusRule); ok && len(pr.Spec.Groups) == 0 {
				fail("%s: PrometheusRule %s has no groups", path, meta.Metadata.Name)
			}
			checked++
		}
	}
	fmt.Printf("crdcheck: %d resources valid\n", checked)
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "crdcheck: "+format+"\n", args...)
	os.Exit(1)
}
