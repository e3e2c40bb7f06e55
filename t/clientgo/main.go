// A leader elector on client-go's own tools/leaderelection (the vendored
// client-go of the kube-apiserver tree the tests build, 1.20.2), for the
// interop suites: it takes part in the election like any client-go
// controller and serves what its elector believes on loopback HTTP.
//
//	kle-clientgo --kubeconfig F --lock leases/NS/NAME --identity ID \
//	    [--lease-duration 4s --renew-deadline 3s --retry-period 500ms] \
//	    [--listen 127.0.0.1:0] [--port-file F] [--count N]
//
// GET /  answers {"identity": ID, "leader": L, "holder": GetLeader(),
// "observed_self": IsLeader()}.  L is what a client-go controller acts on:
// true from OnStartedLeading until the context it was given is done.
// IsLeader() is not that: it compares the last record the elector saw, so
// it stays true after the context is cancelled, through the release write
// until the release's answer is stored (a follower can lead by then), and
// after a failed renewal.  SIGTERM or SIGINT cancels the election: with
// ReleaseOnCancel the lock is released (holderIdentity "") before it exits.
// When leadership is lost otherwise, it campaigns again.  With --count N
// (the benchmark's 1,000 candidates) one process runs N candidates,
// IDENTITY-0 to IDENTITY-N-1, each on a connection of its own, and GET /
// answers a list of their states.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io/ioutil"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig file")
	lock := flag.String("lock", "", "KIND/NAMESPACE/NAME, KIND leases or configmaps")
	identity := flag.String("identity", "", "this candidate's identity")
	leaseDuration := flag.Duration("lease-duration", 4*time.Second, "")
	renewDeadline := flag.Duration("renew-deadline", 3*time.Second, "")
	retryPeriod := flag.Duration("retry-period", 500*time.Millisecond, "")
	listen := flag.String("listen", "127.0.0.1:0", "address to serve the state on")
	portFile := flag.String("port-file", "", "write the bound port here")
	nflag := flag.Int("count", 1, "candidates in this process (IDENTITY-0 ...), for the benchmark")
	klog.InitFlags(nil)
	flag.Parse()

	parts := strings.Split(*lock, "/")
	if len(parts) != 3 || *identity == "" || *kubeconfig == "" || *nflag < 1 {
		fmt.Fprintln(os.Stderr, "need --kubeconfig, --lock KIND/NS/NAME and --identity")
		os.Exit(2)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		klog.Fatalf("kubeconfig: %v", err)
	}
	count := *nflag
	cands := make([]*candidate, count)
	for i := range cands {
		id := *identity
		if count > 1 {
			id = fmt.Sprintf("%s-%d", *identity, i)
		}
		c := *cfg
		if count > 1 {
			// a dialer of its own keeps client-go from sharing one
			// cached transport: one connection per candidate, as pods
			c.Dial = (&net.Dialer{Timeout: 30 * time.Second}).DialContext
		}
		cands[i] = newCandidate(&c, parts, id, *leaseDuration,
			*renewDeadline, *retryPeriod)
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		klog.Fatalf("listen: %v", err)
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if count == 1 {
			json.NewEncoder(w).Encode(cands[0].state())
			return
		}
		all := make([]map[string]interface{}, count)
		for i, c := range cands {
			all[i] = c.state()
		}
		json.NewEncoder(w).Encode(all)
	})
	go http.Serve(ln, nil)
	port := ln.Addr().(*net.TCPAddr).Port
	if *portFile != "" {
		tmp := *portFile + ".tmp"
		if err := ioutil.WriteFile(tmp, []byte(fmt.Sprintf("%d\n", port)), 0644); err != nil {
			klog.Fatalf("port file: %v", err)
		}
		os.Rename(tmp, *portFile)
	}
	klog.Infof("serving on 127.0.0.1:%d", port)

	ctx, cancel := context.WithCancel(context.Background())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		klog.Infof("signal: releasing")
		cancel()
	}()
	var wg sync.WaitGroup
	for _, c := range cands {
		wg.Add(1)
		go func(c *candidate) {
			defer wg.Done()
			for ctx.Err() == nil {
				c.le.Run(ctx) // returns on cancel (after the release) or on loss
			}
		}(c)
	}
	wg.Wait()
	klog.Infof("exiting")
	klog.Flush()
}

// candidate is one client-go elector and the context of its current term.
type candidate struct {
	id   string
	le   *leaderelection.LeaderElector
	term atomic.Value // context.Context of the current term
}

func newCandidate(cfg *rest.Config, parts []string, id string,
	leaseDuration, renewDeadline, retryPeriod time.Duration) *candidate {
	c := &candidate{id: id}
	// as client-go's own callers do: request timeout renewDeadline / 2
	rl, err := resourcelock.NewFromKubeconfig(parts[0], parts[1], parts[2],
		resourcelock.ResourceLockConfig{Identity: id}, cfg, renewDeadline)
	if err != nil {
		klog.Fatalf("lock: %v", err)
	}
	c.le, err = leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            rl,
		LeaseDuration:   leaseDuration,
		RenewDeadline:   renewDeadline,
		RetryPeriod:     retryPeriod,
		ReleaseOnCancel: true,
		Name:            id,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				c.term.Store(ctx)
				klog.Infof("%s: started leading", id)
			},
			OnStoppedLeading: func() { klog.Infof("%s: stopped leading", id) },
			OnNewLeader:      func(h string) { klog.Infof("%s: new leader %q", id, h) },
		},
	})
	if err != nil {
		klog.Fatalf("elector: %v", err)
	}
	return c
}

// leading is what a client-go controller acts on: the term's context is
// live.  client-go cancels it before it sends the release.
func (c *candidate) leading() bool {
	ctx, _ := c.term.Load().(context.Context)
	return ctx != nil && ctx.Err() == nil
}

func (c *candidate) state() map[string]interface{} {
	return map[string]interface{}{
		"identity": c.id, "leader": c.leading(),
		"holder": c.le.GetLeader(), "observed_self": c.le.IsLeader()}
}
