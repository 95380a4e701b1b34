package eventbus_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/heraldshared/eventbus"
	"github.com/heraldhq/herald/services/heraldshared/testenv/natstest"
)

// durable is what a user checks on the server: the stream's and the idempotency bucket's replicas,
// storage and duplicate window.
type durable struct {
	StreamReplicas, BucketReplicas int
	StreamStorage, BucketStorage   jetstream.StorageType
	Duplicates                     time.Duration
}

func observe(t *testing.T, js jetstream.JetStream, stream string) durable {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, eventbus.IdempotencyBucket(stream))
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kvCfg := st.(*jetstream.KeyValueBucketStatus).StreamInfo().Config
	cfg := s.CachedInfo().Config
	return durable{cfg.Replicas, kvCfg.Replicas, cfg.Storage, kvCfg.Storage, cfg.Duplicates}
}

// syncBuffer is a log sink several goroutines may write.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func connectWith(t *testing.T, url string, opts ...eventbus.Option) (jetstream.JetStream, error) {
	t.Helper()
	nc, js, err := eventbus.Connect(context.Background(), url, "durability-test", opts...)
	if err != nil {
		return nil, err
	}
	t.Cleanup(nc.Close)
	return js, nil
}

func TestConnectAppliesTheConfiguredDurabilityAndUpdatesTheWindow(t *testing.T) {
	t.Parallel()
	url := natstest.Embedded(t)
	js, err := connectWith(t, url)
	if err != nil {
		t.Fatal(err)
	}
	want := durable{1, 1, jetstream.FileStorage, jetstream.FileStorage, eventbus.DedupeWindow}
	if diff := cmp.Diff(want, observe(t, js, eventbus.Stream)); diff != "" {
		t.Errorf("default durability (-want +got):\n%s", diff)
	}
	pub, _ := eventbus.NewPublisher(js, 5*time.Second)
	if err := pub.Publish(context.Background(), eventbus.SubjectRequested, "m1", []byte("kept")); err != nil {
		t.Fatal(err)
	}

	// A restart with another duplicate window updates the existing stream in place and says so.
	var logs syncBuffer
	d := eventbus.DefaultDurability()
	d.DuplicateWindow = 10 * time.Minute
	js, err = connectWith(t, url, eventbus.WithDurability(d), eventbus.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	want.Duplicates = 10 * time.Minute
	if diff := cmp.Diff(want, observe(t, js, eventbus.Stream)); diff != "" {
		t.Errorf("after the update (-want +got):\n%s", diff)
	}
	if !strings.Contains(logs.String(), "duplicate window: 1h0m0s -> 10m0s") {
		t.Errorf("the update was not logged with what changed:\n%s", logs.String())
	}
	if n := messages(t, js); n != 1 {
		t.Errorf("stream holds %d messages after the update, want the 1 published before", n)
	}

	// The same configuration again changes nothing and logs nothing.
	logs = syncBuffer{}
	if _, err := connectWith(t, url, eventbus.WithDurability(d), eventbus.WithLogger(slog.New(slog.NewTextHandler(&logs, nil)))); err != nil {
		t.Fatal(err)
	}
	if logs.String() != "" {
		t.Errorf("an unchanged configuration logged:\n%s", logs.String())
	}
}

func messages(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), eventbus.Stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestConnectRefusesAStreamWithAnotherStorage(t *testing.T) {
	t.Parallel()
	url := natstest.Embedded(t)
	js, err := connectWith(t, url)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := eventbus.NewPublisher(js, 5*time.Second)
	if err := pub.Publish(context.Background(), eventbus.SubjectRequested, "m1", []byte("kept")); err != nil {
		t.Fatal(err)
	}
	d := eventbus.DefaultDurability()
	d.Storage = jetstream.MemoryStorage
	_, err = connectWith(t, url, eventbus.WithDurability(d))
	var mismatch *eventbus.StorageMismatchError
	if !errors.As(err, &mismatch) {
		t.Fatalf("Connect with memory storage over a file stream = %v, want a StorageMismatchError", err)
	}
	for _, s := range []string{"file storage", "HERALD_STREAM_STORAGE is memory", "HERALD_STREAM_STORAGE=file"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
	// Nothing was dropped or recreated.
	if n := messages(t, js); n != 1 {
		t.Errorf("stream holds %d messages after the refused start, want 1", n)
	}
}

func TestNonManagingServiceWarnsWhenTheStreamDiffers(t *testing.T) {
	t.Parallel()
	url := natstest.Embedded(t)
	if _, err := connectWith(t, url); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	d := eventbus.DefaultDurability()
	d.DuplicateWindow = 5 * time.Minute
	js, err := connectWith(t, url, eventbus.AsService(eventbus.ServiceGateway), eventbus.WithDurability(d),
		eventbus.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "stream differs") || !strings.Contains(logs.String(), "duplicate window: 1h0m0s -> 5m0s") {
		t.Errorf("the gateway did not warn about the difference:\n%s", logs.String())
	}
	// It may not change the stream, and did not.
	if got := observe(t, js, eventbus.Stream).Duplicates; got != eventbus.DedupeWindow {
		t.Errorf("the gateway changed the window to %s", got)
	}
}

func TestDurabilityValidate(t *testing.T) {
	t.Parallel()
	ok := eventbus.DefaultDurability()
	for name, change := range map[string]func(*eventbus.Durability){
		"no replicas":     func(d *eventbus.Durability) { d.Replicas = 0 },
		"six replicas":    func(d *eventbus.Durability) { d.Replicas = 6 },
		"unknown storage": func(d *eventbus.Durability) { d.Storage = 7 },
		"no window":       func(d *eventbus.Durability) { d.DuplicateWindow = 0 },
		"window too long": func(d *eventbus.Durability) { d.DuplicateWindow = 31 * 24 * time.Hour },
	} {
		d := ok
		change(&d)
		if err := d.Validate(); err == nil || !strings.Contains(err.Error(), "HERALD_STREAM_") {
			t.Errorf("%s: Validate = %v, want an error naming the variable", name, err)
		}
		if _, err := connectWith(t, "nats://127.0.0.1:1", eventbus.WithDurability(d)); err == nil || strings.Contains(err.Error(), "connect") {
			t.Errorf("%s: Connect = %v, want the configuration refused before dialing", name, err)
		}
	}
	if err := ok.Validate(); err != nil {
		t.Errorf("the default durability is invalid: %v", err)
	}
}

// On a three-node cluster, a stream created with one replica is raised to three by a restart with
// HERALD_STREAM_REPLICAS=3, the bucket too, and a new object store gets three from the start.
func TestClusterScalesStreamAndBucketsToTheConfiguredReplicas(t *testing.T) {
	t.Parallel()
	urls := natstest.Cluster(t, 3)
	js, err := connectWith(t, urls[0])
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := eventbus.NewPublisher(js, 5*time.Second)
	if err := pub.Publish(context.Background(), eventbus.SubjectRequested, "m1", []byte("kept")); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// A service's durable consumer, made while the stream had one replica.
	if _, err := js.CreateOrUpdateConsumer(ctx, eventbus.Stream, jetstream.ConsumerConfig{Durable: "before", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	d := eventbus.DefaultDurability()
	d.Replicas = 3
	js, err = connectWith(t, urls[1], eventbus.WithDurability(d))
	if err != nil {
		t.Fatal(err)
	}
	want := durable{3, 3, jetstream.FileStorage, jetstream.FileStorage, eventbus.DedupeWindow}
	if diff := cmp.Diff(want, observe(t, js, eventbus.Stream)); diff != "" {
		t.Errorf("after HERALD_STREAM_REPLICAS=3 (-want +got):\n%s", diff)
	}
	if n := messages(t, js); n != 1 {
		t.Errorf("stream holds %d messages after scaling, want 1", n)
	}
	objCfg := d.ObjectStore(jetstream.ObjectStoreConfig{Bucket: "HERALD_TEST_MEDIA"})
	for range 2 { // the second call finds it as configured
		if err := eventbus.EnsureObjectStore(ctx, js, objCfg, nil); err != nil {
			t.Fatal(err)
		}
	}
	obs, err := js.ObjectStore(ctx, "HERALD_TEST_MEDIA")
	if err != nil {
		t.Fatal(err)
	}
	st, err := obs.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r := st.Replicas(); r != 3 {
		t.Errorf("object store has %d replicas, want 3", r)
	}
	// Consumers made before the change follow the stream (the server scales them), and new ones inherit
	// its replicas.
	if _, err := js.CreateOrUpdateConsumer(ctx, eventbus.Stream, jetstream.ConsumerConfig{Durable: "after", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"before", "after"} {
		deadline := time.Now().Add(15 * time.Second)
		for {
			cons, err := js.Consumer(ctx, eventbus.Stream, name)
			if err != nil {
				t.Fatal(err)
			}
			info := cons.CachedInfo()
			if info.Cluster != nil && len(info.Cluster.Replicas)+1 == 3 {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("consumer %s: cluster info %+v, want a leader and two replicas", name, info.Cluster)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}
