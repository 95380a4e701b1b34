package eventbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Durability says how JetStream keeps Herald's stream and buckets: on how many servers, on disk or in
// memory, and how long a Nats-Msg-Id is remembered. It is configuration (svcconfig.NATS), not code,
// because the right answer differs: one replica on a laptop, three in a cluster.
type Durability struct {
	// Replicas is how many servers keep each message (1 to 5; 3 in a cluster survives one server's loss).
	Replicas int
	// Storage is FileStorage (survives a restart) or MemoryStorage (does not: tests and benchmarks only).
	Storage jetstream.StorageType
	// DuplicateWindow is how long JetStream remembers a Nats-Msg-Id.
	DuplicateWindow time.Duration
}

// DefaultDurability is one replica on file with DedupeWindow: the local stack's, and what a service
// assumes when it is given none.
func DefaultDurability() Durability {
	return Durability{Replicas: 1, Storage: jetstream.FileStorage, DuplicateWindow: DedupeWindow}
}

// maxReplicas is JetStream's limit on replicas.
const maxReplicas = 5

// Validate reports a durability JetStream would refuse, in the terms of the variables that set it.
func (d Durability) Validate() error {
	if d.Replicas < 1 || d.Replicas > maxReplicas {
		return fmt.Errorf("HERALD_STREAM_REPLICAS = %d: want 1 to %d", d.Replicas, maxReplicas)
	}
	if d.Storage != jetstream.FileStorage && d.Storage != jetstream.MemoryStorage {
		return fmt.Errorf("HERALD_STREAM_STORAGE = %d: want file or memory", d.Storage)
	}
	if d.DuplicateWindow <= 0 || d.DuplicateWindow > streamMaxAge {
		return fmt.Errorf("HERALD_STREAM_DUPLICATE_WINDOW = %s: want more than 0 and at most the stream's age limit, %s", d.DuplicateWindow, streamMaxAge)
	}
	return nil
}

// WithDurability sets the replicas, storage and duplicate window of the stream and buckets that Connect
// creates or updates (DefaultDurability without it).
func WithDurability(d Durability) Option {
	return func(o *options) { o.durability = d }
}

// WithLogger is where Connect says what it changed on the server, or what differs from the
// configuration when the service may not change it. Without it, nothing is logged.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.log = l }
}

// StorageMismatchError is returned when a stream exists with another storage type than the configured
// one. JetStream cannot change a stream's storage in place, and doing it by deleting and recreating the
// stream would drop every message in it, so a service refuses to start instead and leaves the choice to
// the operator.
type StorageMismatchError struct {
	// Kind is "stream", "key-value bucket" or "object-store bucket"; Stream is its name.
	Kind       string
	Stream     string
	Existing   jetstream.StorageType
	Configured jetstream.StorageType
}

func (e *StorageMismatchError) Error() string {
	return fmt.Sprintf("%s %s exists with %s storage but HERALD_STREAM_STORAGE is %s: JetStream cannot change storage in place; "+
		"set HERALD_STREAM_STORAGE=%s, or move the messages to a new stream (nats stream backup/restore) and delete the old one",
		e.Kind, e.Stream, storageName(e.Existing), storageName(e.Configured), storageName(e.Existing))
}

// storageName is the HERALD_STREAM_STORAGE spelling of t.
func storageName(t jetstream.StorageType) string {
	if t == jetstream.MemoryStorage {
		return "memory"
	}
	return "file"
}

// ensure creates a stream-backed object, or brings an existing one to the configured durability. exists
// reads the existing one's stream configuration (ok false when there is none); create and update are
// the client's calls. A storage type that differs is a StorageMismatchError; a change of replicas or
// duplicate window is applied and logged.
func ensure(ctx context.Context, kind, name string, want jetstream.StreamConfig, log *slog.Logger,
	exists func(context.Context) (jetstream.StreamConfig, bool, error),
	create, update func(context.Context) error) error {
	have, ok, err := exists(ctx)
	if err != nil {
		return fmt.Errorf("%s %s: %w", kind, name, err)
	}
	if !ok {
		err := create(ctx)
		if err == nil {
			log.Info("created "+kind, kind, name, "replicas", want.Replicas, "storage", storageName(want.Storage), "duplicate_window", want.Duplicates)
			return nil
		}
		// Another replica may have created it meanwhile: compare with what it made.
		if have, ok, err2 := exists(ctx); err2 != nil || !ok {
			return fmt.Errorf("create %s %s: %w", kind, name, err)
		} else {
			return reconcile(ctx, kind, name, have, want, log, update)
		}
	}
	return reconcile(ctx, kind, name, have, want, log, update)
}

func reconcile(ctx context.Context, kind, name string, have, want jetstream.StreamConfig, log *slog.Logger, update func(context.Context) error) error {
	if have.Storage != want.Storage {
		return &StorageMismatchError{Kind: kind, Stream: name, Existing: have.Storage, Configured: want.Storage}
	}
	changes := differences(have, want)
	if len(changes) == 0 {
		return nil
	}
	if err := update(ctx); err != nil {
		return fmt.Errorf("update %s %s (%v): %w", kind, name, changes, err)
	}
	log.Warn("updated "+kind+" to the configuration", kind, name, "changes", changes)
	return nil
}

// differences lists the settings Herald configures that differ between have and want, as "what: from
// -> to". Settings outside Durability that still differ (a new version's subjects, say) count as one
// "other settings" change, so an update still happens.
func differences(have, want jetstream.StreamConfig) []string {
	var out []string
	if have.Replicas != want.Replicas {
		out = append(out, fmt.Sprintf("replicas: %d -> %d", have.Replicas, want.Replicas))
	}
	if have.Duplicates != want.Duplicates {
		out = append(out, fmt.Sprintf("duplicate window: %s -> %s", have.Duplicates, want.Duplicates))
	}
	if have.MaxAge != want.MaxAge {
		out = append(out, fmt.Sprintf("max age: %s -> %s", have.MaxAge, want.MaxAge))
	}
	if !sameStrings(have.Subjects, want.Subjects) {
		out = append(out, fmt.Sprintf("subjects: %v -> %v", have.Subjects, want.Subjects))
	}
	if have.Description != want.Description {
		out = append(out, "description")
	}
	return out
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// streamExists adapts js.Stream to ensure.
func streamExists(js jetstream.JetStream, name string) func(context.Context) (jetstream.StreamConfig, bool, error) {
	return func(ctx context.Context) (jetstream.StreamConfig, bool, error) {
		s, err := js.Stream(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return jetstream.StreamConfig{}, false, nil
		}
		if err != nil {
			return jetstream.StreamConfig{}, false, err
		}
		return s.CachedInfo().Config, true, nil
	}
}

// EnsureStream creates the stream cfg names, or updates an existing one to cfg (see StorageMismatchError
// for what cannot be updated).
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig, log *slog.Logger) error {
	log = orDiscard(log)
	have, existed, err := streamExists(js, cfg.Name)(ctx)
	if err != nil {
		return fmt.Errorf("stream %s: %w", cfg.Name, err)
	}
	if err := ensure(ctx, "stream", cfg.Name, cfg, log, streamExists(js, cfg.Name),
		func(ctx context.Context) error { _, err := js.CreateStream(ctx, cfg); return err },
		func(ctx context.Context) error { _, err := js.UpdateStream(ctx, cfg); return err }); err != nil {
		return err
	}
	if existed && have.Replicas < cfg.Replicas {
		awaitReplicas(ctx, js, cfg.Name, cfg.Replicas, 30*time.Second, log)
	}
	return nil
}

// awaitReplicas waits, up to limit, until the stream just scaled up has all its replicas and every one is
// current: until its new peers have caught up, the server refuses to create consumers on it ("insufficient
// resources"), and the services create theirs next. Only after a scale-up: at an ordinary start a node
// may be down, which an R3 stream rides out and a start must too.
func awaitReplicas(ctx context.Context, js jetstream.JetStream, name string, want int, limit time.Duration, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		if s, err := js.Stream(ctx, name); err == nil {
			if c := s.CachedInfo().Cluster; c != nil && c.Leader != "" && len(c.Replicas) == want-1 && allCurrent(c.Replicas) {
				return
			}
		}
		select {
		case <-ctx.Done():
			log.Warn("stream scaled up but its replicas are not all current yet; consumers may be refused until they are", "stream", name, "replicas", want, "waited", limit)
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func allCurrent(peers []*jetstream.PeerInfo) bool {
	for _, p := range peers {
		if p == nil || !p.Current || p.Offline {
			return false
		}
	}
	return true
}

// EnsureKeyValue creates the key-value bucket cfg names, or updates an existing one to cfg, like
// EnsureStream. A bucket is the stream KV_<bucket>.
func EnsureKeyValue(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig, log *slog.Logger) error {
	// The settings Herald configures, in the form of the bucket's stream, to compare with the existing one.
	want := jetstream.StreamConfig{Replicas: max(cfg.Replicas, 1), Storage: cfg.Storage, Duplicates: kvDuplicates(cfg.TTL), MaxAge: cfg.TTL}
	exists := func(ctx context.Context) (jetstream.StreamConfig, bool, error) {
		kv, err := js.KeyValue(ctx, cfg.Bucket)
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			return jetstream.StreamConfig{}, false, nil
		}
		if err != nil {
			return jetstream.StreamConfig{}, false, err
		}
		st, err := kv.Status(ctx)
		if err != nil {
			return jetstream.StreamConfig{}, false, err
		}
		have := st.(*jetstream.KeyValueBucketStatus).StreamInfo().Config
		// Compare only what want holds: the client fills the rest of a bucket's stream itself.
		return jetstream.StreamConfig{Replicas: have.Replicas, Storage: have.Storage, Duplicates: have.Duplicates, MaxAge: have.MaxAge}, true, nil
	}
	return ensure(ctx, "key-value bucket", cfg.Bucket, want, orDiscard(log), exists,
		func(ctx context.Context) error { _, err := js.CreateKeyValue(ctx, cfg); return err },
		func(ctx context.Context) error { _, err := js.UpdateKeyValue(ctx, cfg); return err })
}

// kvDuplicates is the duplicate window nats.go gives a bucket's stream: two minutes, or the TTL when
// that is shorter.
func kvDuplicates(ttl time.Duration) time.Duration {
	const d = 2 * time.Minute
	if ttl > 0 && ttl < d {
		return ttl
	}
	return d
}

// EnsureObjectStore creates the object-store bucket cfg names, or updates an existing one to cfg, like
// EnsureStream. A bucket is the stream OBJ_<bucket>.
func EnsureObjectStore(ctx context.Context, js jetstream.JetStream, cfg jetstream.ObjectStoreConfig, log *slog.Logger) error {
	want := jetstream.StreamConfig{Replicas: max(cfg.Replicas, 1), Storage: cfg.Storage, MaxAge: cfg.TTL}
	exists := func(ctx context.Context) (jetstream.StreamConfig, bool, error) {
		obs, err := js.ObjectStore(ctx, cfg.Bucket)
		if errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
			return jetstream.StreamConfig{}, false, nil
		}
		if err != nil {
			return jetstream.StreamConfig{}, false, err
		}
		st, err := obs.Status(ctx)
		if err != nil {
			return jetstream.StreamConfig{}, false, err
		}
		have := st.(*jetstream.ObjectBucketStatus).StreamInfo().Config
		return jetstream.StreamConfig{Replicas: have.Replicas, Storage: have.Storage, MaxAge: have.MaxAge}, true, nil
	}
	return ensure(ctx, "object-store bucket", cfg.Bucket, want, orDiscard(log), exists,
		func(ctx context.Context) error { _, err := js.CreateObjectStore(ctx, cfg); return err },
		func(ctx context.Context) error { _, err := js.UpdateObjectStore(ctx, cfg); return err })
}

// KeyValue is cfg with the durability's replicas and storage.
func (d Durability) KeyValue(cfg jetstream.KeyValueConfig) jetstream.KeyValueConfig {
	cfg.Replicas, cfg.Storage = d.Replicas, d.Storage
	return cfg
}

// ObjectStore is cfg with the durability's replicas and storage.
func (d Durability) ObjectStore(cfg jetstream.ObjectStoreConfig) jetstream.ObjectStoreConfig {
	cfg.Replicas, cfg.Storage = d.Replicas, d.Storage
	return cfg
}

// checkStream compares an existing stream with the configuration, for services that may not change it:
// a difference is logged as a warning (the approval service, which manages the stream, brings it to its
// own configuration; during a rolling change the two may briefly differ).
func checkStream(ctx context.Context, js jetstream.JetStream, want jetstream.StreamConfig, log *slog.Logger) {
	have, ok, err := streamExists(js, want.Name)(ctx)
	if err != nil || !ok {
		return
	}
	if have.Storage != want.Storage {
		log.Warn("stream storage differs from HERALD_STREAM_STORAGE; the approval service refuses to start this way",
			"stream", want.Name, "existing", storageName(have.Storage), "configured", storageName(want.Storage))
	}
	if ch := differences(have, want); len(ch) > 0 {
		log.Warn("stream differs from this service's configuration; the approval service manages it", "stream", want.Name, "differences", ch)
	}
}

func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
