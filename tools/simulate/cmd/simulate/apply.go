package main

import (
	"context"
	"sort"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// applyWorkers is how many objects are applied at once: the API server's round trips, not its
// CPU, bound a serial apply.
const applyWorkers = 8

// ApplyWaves applies the rendered Applications to the control plane as Argo CD syncs them and
// returns what was applied (objects, of which CRDs, and admission webhook configurations
// admitted as a dry run) and every refusal, sorted.
//
// The CRDs of every Application are installed first, together, and awaited once (Argo CD
// applies an Application's CRDs first in its sync; installing the later waves' CRDs earlier
// changes nothing the scenarios judge, and one wait for all is faster than one per wave); a CRD
// whose kind no object uses is left out (make verify validates it).
// Then wave by wave, each Application's Namespaces first and its other objects concurrently.
// The charts' webhook configurations are admitted as a dry run only: KWOK's pods serve no
// webhook, so installing them would make the API server refuse what they guard; the injection
// they do is done beforehand (Injector), the validation by make verify.
func ApplyWaves(ctx context.Context, a *Applier, waves []Wave, log func(string, ...any)) (applied, crds, webhooks int, refused []string) {
	var mu sync.Mutex
	fail := func(app string, err error) {
		mu.Lock()
		defer mu.Unlock()
		refused = append(refused, app+": "+err.Error())
	}
	used := map[string]bool{} // group/Kind of every object
	for _, w := range waves {
		for _, o := range w.Objects {
			used[o.GroupVersionKind().Group+"/"+o.GetKind()] = true
		}
	}
	var install, validate []*unstructured.Unstructured
	for _, w := range waves {
		for _, o := range w.Objects {
			if o.GetKind() != "CustomResourceDefinition" {
				continue
			}
			group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
			kind, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
			if used[group+"/"+kind] {
				install = append(install, o)
			} else {
				validate = append(validate, o)
			}
		}
	}
	start := time.Now()
	n, err := InstallCRDs(ctx, a, install)
	if err != nil {
		fail("CRDs", err)
	}
	// A CRD whose kind no object uses would only cost the API server an OpenAPI rebuild (and its
	// CEL rules a compilation): make verify's schema stage validates it like every object.
	crds = n
	log("%d CRDs that objects use established in %.1fs (%d more that nothing uses are left out)", n, time.Since(start).Seconds(), len(validate))

	for _, w := range waves {
		var first, rest []*unstructured.Unstructured
		for _, o := range w.Objects {
			switch o.GetKind() {
			case "CustomResourceDefinition":
			case "Namespace":
				first = append(first, o)
			case "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration":
				if err := a.Validate(ctx, o); err != nil {
					fail(w.Name, err)
				}
				webhooks++
			default:
				rest = append(rest, o)
			}
		}
		for _, batch := range [][]*unstructured.Unstructured{first, rest} {
			ok := applyAll(ctx, a, batch, func(err error) { fail(w.Name, err) })
			applied += ok
		}
	}
	applied += crds
	sort.Strings(refused)
	return applied, crds, webhooks, refused
}

// applyAll applies objects with applyWorkers at a time and returns how many the API server took.
func applyAll(ctx context.Context, a *Applier, objs []*unstructured.Unstructured, fail func(error)) int {
	jobs := make(chan *unstructured.Unstructured)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for i := 0; i < applyWorkers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := range jobs {
				if err := a.Apply(ctx, o); err != nil {
					fail(err)
					continue
				}
				mu.Lock()
				ok++
				mu.Unlock()
			}
		}()
	}
	for _, o := range objs {
		jobs <- o
	}
	close(jobs)
	wg.Wait()
	return ok
}

// InstallCRDs applies CustomResourceDefinitions, applyWorkers at a time, and waits until the API
// server serves every one of them.
func InstallCRDs(ctx context.Context, a *Applier, crds []*unstructured.Unstructured) (int, error) {
	if len(crds) == 0 {
		return 0, nil
	}
	var firstErr error
	var mu sync.Mutex
	applyAll(ctx, a, crds, func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = err
		}
	})
	if firstErr != nil {
		return 0, firstErr
	}
	names := map[string]bool{}
	for _, c := range crds {
		names[c.GetName()] = true
	}
	gvr := a.cp.Dynamic.Resource(crdResource)
	err := waitFor(ctx, 120*time.Second, "CRDs established", func() (bool, error) {
		list, err := gvr.List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		established := 0
		for _, item := range list.Items {
			conds, _, _ := unstructured.NestedSlice(item.Object, "status", "conditions")
			for _, c := range conds {
				cm := c.(map[string]any)
				if names[item.GetName()] && cm["type"] == "Established" && cm["status"] == "True" {
					established++
				}
			}
		}
		return established >= len(names), nil
	})
	a.mapper.Reset()
	return len(names), err
}
