// A leader elector on client-go's own tools/leaderelection (the vendored
// client-go of the kube-apiserver tree the tests build, 1.20.2), for the
// interop suites: it takes part in the election like any client-go
// controller and serves what its elector believes on loopback HTTP.
//
//	kle-clientgo --kubeconfig F --lock leases/NS/NAME --identity ID \
//	    [--lease-duration 4s --renew-deadline 3s --retry-period 500ms] \
//	    [--listen 127.0.0.1:0] [--port-file F]
//
// GET /  answers {"identity": ID, "leader": L, "holder": GetLeader(),
// "observed_self": IsLeader()}.  L is what a client-go controller acts on:
// true from OnStartedLeading until the context it was given is done.
// IsLeader() is not that: it compares the last record the elector saw, so
// it stays true after the context is cancelled, through the release write
// until the release's answer is stored (a follower can lead by then), and
// after a failed renewal.  SIGTERM or SIGINT cancels the election: with
// ReleaseOnCancel the lock is released (holderIdentity "") before it exits.
// When leadership is lost otherwise, it campaigns again.
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
	"sync/atomic"
	"syscall"
	"time"

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
	klog.InitFlags(nil)
	flag.Parse()

	parts := strings.Split(*lock, "/")
	if len(parts) != 3 || *identity == "" || *kubeconfig == "" {
		fmt.Fprintln(os.Stderr, "need --kubeconfig, --lock KIND/NS/NAME and --identity")
		os.Exit(2)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		klog.Fatalf("kubeconfig: %v", err)
	}
	// as client-go's own callers do: request timeout renewDeadline / 2
	rl, err := resourcelock.NewFromKubeconfig(parts[0], parts[1], parts[2],
		resourcelock.ResourceLockConfig{Identity: *identity}, cfg, *renewDeadline)
	if err != nil {
		klog.Fatalf("lock: %v", err)
	}

	// the context of the current term; a term ends when it is done, which
	// client-go does before it sends the release
	var term atomic.Value
	leading := func() bool {
		ctx, _ := term.Load().(context.Context)
		return ctx != nil && ctx.Err() == nil
	}

	var le *leaderelection.LeaderElector
	le, err = leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            rl,
		LeaseDuration:   *leaseDuration,
		RenewDeadline:   *renewDeadline,
		RetryPeriod:     *retryPeriod,
		ReleaseOnCancel: true,
		Name:            *identity,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				term.Store(ctx)
				klog.Infof("started leading")
			},
			OnStoppedLeading: func() { klog.Infof("stopped leading") },
			OnNewLeader:      func(id string) { klog.Infof("new leader %q", id) },
		},
	})
	if err != nil {
		klog.Fatalf("elector: %v", err)
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		klog.Fatalf("listen: %v", err)
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]interface{}{
			"identity": *identity, "leader": leading(),
			"holder": le.GetLeader(), "observed_self": le.IsLeader()})
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
	for ctx.Err() == nil {
		le.Run(ctx) // returns on cancel (after the release) or on loss
	}
	klog.Infof("exiting")
	klog.Flush()
}
