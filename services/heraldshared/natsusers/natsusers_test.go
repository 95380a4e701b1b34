package natsusers_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/bcrypt"

	"github.com/heraldhq/herald/services/heraldshared/eventbus"
	"github.com/heraldhq/herald/services/heraldshared/media"
	"github.com/heraldhq/herald/services/heraldshared/natsusers"
)

const stream = "HERALD_POSTS"

var accounts = []natsusers.Account{
	{Service: eventbus.ServiceGateway, User: "herald-gateway", Password: "gateway-password-0123456789"},
	{Service: eventbus.ServiceApproval, User: "herald-approval", Password: "approval-password-0123456789", Durable: "herald-approval"},
	{Service: eventbus.ServicePublisher, User: "herald-publisher", Password: "publisher-password-0123456789", Durable: "herald-publisher"},
}

// startWithUsers runs an embedded server that knows only Herald's three users, built from the grants.
func startWithUsers(t *testing.T) string {
	t.Helper()
	users, err := natsusers.Users(stream, accounts)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if u.Password == "" || u.Password[0] != '$' {
			t.Fatalf("user %s: the server must get a bcrypt hash, not the password", u.Username)
		}
	}
	return run(t, &server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(), Users: users})
}

// startFromConfig runs a server from the production configuration in deploy/nats, with the password
// hashes in the environment as an operator would set them.
func startFromConfig(t *testing.T) string {
	t.Helper()
	for _, a := range accounts {
		hash, err := bcrypt.GenerateFromPassword([]byte(a.Password), 4)
		if err != nil {
			t.Fatal(err)
		}
		t.Setenv("HERALD_NATS_"+strings.ToUpper(string(a.Service))+"_PASSWORD_HASH", string(hash))
	}
	opts, err := server.ProcessConfigFile(filepath.Join(deployNATS, "nats-server.conf"))
	if err != nil {
		t.Fatalf("the production configuration does not load: %v", err)
	}
	if !opts.JetStream || !opts.SyncAlways {
		t.Errorf("the production configuration must enable JetStream and fsync every write (sync_interval: always)")
	}
	opts.Host, opts.Port, opts.StoreDir = "127.0.0.1", server.RANDOM_PORT, t.TempDir()
	return run(t, opts)
}

func run(t *testing.T, opts *server.Options) string {
	t.Helper()
	opts.NoLog, opts.NoSigs = true, true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats did not start")
	}
	t.Cleanup(s.Shutdown)
	return s.ClientURL()
}

const deployNATS = "../../../deploy/nats"

type client struct {
	nc *nats.Conn
	js jetstream.JetStream
	// denied receives the server's permission errors.
	denied chan error
}

func connectAs(t *testing.T, url string, a natsusers.Account) client {
	t.Helper()
	c := client{denied: make(chan error, 16)}
	nc, err := nats.Connect(url, nats.UserInfo(a.User, a.Password), nats.CustomInboxPrefix(a.Service.InboxPrefix()),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrPermissionViolation) {
				select {
				case c.denied <- err:
				default:
				}
			}
		}))
	if err != nil {
		t.Fatalf("connect as %s: %v", a.User, err)
	}
	t.Cleanup(nc.Close)
	c.nc = nc
	if c.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	t.Cleanup(cancel)
	return c
}

// short bounds a call the server is expected to refuse: a refused request gets no reply, only an
// asynchronous permission error, so the call ends at this deadline.
func short(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	t.Cleanup(cancel)
	return c
}

func count(t *testing.T, js jetstream.JetStream, subject string) uint64 {
	t.Helper()
	s, err := js.Stream(ctx(t), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx(t), jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestEachServiceMayDoOnlyItsOwnWork(t *testing.T) {
	t.Run("embedded users", func(t *testing.T) { checkGrants(t, startWithUsers(t)) })
	t.Run("production configuration", func(t *testing.T) { checkGrants(t, startFromConfig(t)) })
}

func checkGrants(t *testing.T, url string) {
	gateway, approval, publisher := connectAs(t, url, accounts[0]), connectAs(t, url, accounts[1]), connectAs(t, url, accounts[2])

	if _, err := nats.Connect(url); err == nil {
		t.Fatal("an anonymous connection was accepted")
	}
	if _, err := nats.Connect(url, nats.UserInfo("herald-gateway", "wrong-password-0123456789")); err == nil {
		t.Fatal("a wrong password was accepted")
	}

	// Only the approval service may create the stream.
	cfg := eventbus.StreamConfig(stream)
	if _, err := gateway.js.CreateStream(short(t), cfg); err == nil {
		t.Error("the gateway created the stream")
	}
	if _, err := approval.js.CreateStream(ctx(t), cfg); err != nil {
		t.Fatalf("the approval service cannot create the stream: %v", err)
	}

	// Only the approval service may create the idempotency bucket; the gateway may use it and no other.
	checkIdempotencyBucket(t, gateway, approval, publisher)
	checkRateBucket(t, gateway, approval, publisher)
	// Only the approval service may create the media bucket; the gateway writes, everyone reads, only the
	// approval service deletes.
	checkMediaBucket(t, gateway, approval, publisher)

	// What each service must be able to do.
	if _, err := gateway.js.Publish(ctx(t), eventbus.SubjectRequested, []byte("request")); err != nil {
		t.Fatalf("gateway publishing a request: %v", err)
	}
	consume := func(c client, durable, subject string) jetstream.Msg {
		t.Helper()
		cons, err := c.js.CreateOrUpdateConsumer(ctx(t), stream, jetstream.ConsumerConfig{
			Durable: eventbus.ConsumerName(durable, subject), FilterSubject: subject, AckPolicy: jetstream.AckExplicitPolicy,
		})
		if err != nil {
			t.Fatalf("consumer for %s: %v", subject, err)
		}
		msg, err := cons.Next(jetstream.FetchMaxWait(2 * time.Second))
		if err != nil {
			t.Fatalf("next %s: %v", subject, err)
		}
		if err := msg.DoubleAck(ctx(t)); err != nil {
			t.Fatalf("ack %s: %v", subject, err)
		}
		return msg
	}
	consume(approval, "herald-approval", eventbus.SubjectRequested)
	if _, err := approval.js.Publish(ctx(t), eventbus.SubjectApproved, []byte("approval")); err != nil {
		t.Fatalf("approval service publishing an approval: %v", err)
	}
	consume(publisher, "herald-publisher", eventbus.SubjectApproved)
	if _, err := publisher.js.Publish(ctx(t), eventbus.SubjectPublished, []byte("published")); err != nil {
		t.Fatalf("publisher publishing its outcome: %v", err)
	}

	// What each must not: forged events never reach the stream.
	forgeries := []struct {
		name    string
		c       client
		subject string
	}{
		{"gateway forges an approval", gateway, eventbus.SubjectApproved},
		{"gateway forges a publication", gateway, eventbus.SubjectPublished},
		{"publisher forges an approval", publisher, eventbus.SubjectApproved},
		{"publisher forges a request", publisher, eventbus.SubjectRequested},
		{"approval service forges a publication", approval, eventbus.SubjectPublished},
		{"approval service forges a request", approval, eventbus.SubjectRequested},
	}
	before := map[string]uint64{}
	for _, s := range []string{eventbus.SubjectApproved, eventbus.SubjectPublished, eventbus.SubjectRequested} {
		before[s] = count(t, approval.js, s)
	}
	for _, f := range forgeries {
		if _, err := f.c.js.Publish(short(t), f.subject, []byte("forged")); err == nil {
			t.Errorf("%s: JetStream acknowledged it", f.name)
		}
	}
	for s, n := range before {
		if got := count(t, approval.js, s); got != n {
			t.Errorf("%s holds %d messages after the forgeries, want %d", s, got, n)
		}
	}

	// Nor may they read or manage what is not theirs.
	if _, err := gateway.js.CreateOrUpdateConsumer(short(t), stream, jetstream.ConsumerConfig{Durable: "snoop", FilterSubject: eventbus.SubjectApproved}); err == nil {
		t.Error("the gateway created a consumer")
	}
	if _, err := publisher.js.CreateOrUpdateConsumer(short(t), stream, jetstream.ConsumerConfig{
		Durable: eventbus.ConsumerName("herald-publisher", eventbus.SubjectRequested), FilterSubject: eventbus.SubjectRequested,
	}); err == nil {
		t.Error("the publisher created a consumer of requests")
	}
	for name, c := range map[string]client{"gateway": gateway, "publisher": publisher, "approval": approval} {
		if err := c.js.DeleteStream(short(t), stream); err == nil {
			t.Fatalf("the %s deleted the stream", name)
		}
		s, err := c.js.Stream(ctx(t), stream)
		if err != nil {
			t.Fatalf("the %s cannot read the stream's info: %v", name, err)
		}
		if err := s.Purge(short(t)); err == nil {
			t.Errorf("the %s purged the stream", name)
		}
	}
	if n := count(t, approval.js, eventbus.SubjectRequested); n == 0 {
		t.Error("the stream lost its messages")
	}
	if _, err := gateway.nc.SubscribeSync(eventbus.ServiceApproval.InboxPrefix() + ".>"); err == nil {
		select {
		case <-gateway.denied:
		case <-time.After(2 * time.Second):
			t.Error("the gateway subscribed to the approval service's inbox")
		}
	}
}

// checkIdempotencyBucket shows that the gateway can claim, read, swap and delete keys in its bucket, and
// can neither create, purge nor delete buckets, nor touch another one; the publisher cannot read it.
func checkIdempotencyBucket(t *testing.T, gateway, approval, publisher client) {
	t.Helper()
	kvCfg := eventbus.IdempotencyBucketConfig(stream)
	if _, err := gateway.js.CreateKeyValue(short(t), kvCfg); err == nil {
		t.Error("the gateway created the idempotency bucket")
	}
	if _, err := approval.js.CreateKeyValue(ctx(t), kvCfg); err != nil {
		t.Fatalf("the approval service cannot create the idempotency bucket: %v", err)
	}
	if _, err := approval.js.CreateKeyValue(ctx(t), jetstream.KeyValueConfig{Bucket: "OTHER"}); err == nil {
		t.Error("the approval service created a bucket that is not Herald's")
	}

	kv, err := gateway.js.KeyValue(ctx(t), kvCfg.Bucket)
	if err != nil {
		t.Fatalf("the gateway cannot bind to its bucket: %v", err)
	}
	rev, err := kv.Create(ctx(t), "post-1", []byte("claimed"))
	if err != nil {
		t.Fatalf("the gateway cannot claim a key: %v", err)
	}
	if _, err := kv.Create(ctx(t), "post-1", []byte("again")); !errors.Is(err, jetstream.ErrKeyExists) {
		t.Errorf("a second claim of one key = %v, want ErrKeyExists", err)
	}
	if rev, err = kv.Update(ctx(t), "post-1", []byte("accepted"), rev); err != nil {
		t.Fatalf("the gateway cannot swap its claim: %v", err)
	}
	if e, err := kv.Get(ctx(t), "post-1"); err != nil || string(e.Value()) != "accepted" {
		t.Fatalf("the gateway reads its claim as %v, %v", e, err)
	}
	if err := kv.Delete(ctx(t), "post-1", jetstream.LastRevision(rev)); err != nil {
		t.Errorf("the gateway cannot release its claim: %v", err)
	}
	if err := kv.Purge(short(t), "post-1"); err == nil {
		// A purge is a publish to the key's subject with a header, which the grant allows; what matters is
		// that the bucket itself stays.
		t.Log("the gateway may purge a key of its own bucket (a rollup publish on $KV.<bucket>.>)")
	}
	if err := gateway.js.DeleteKeyValue(short(t), kvCfg.Bucket); err == nil {
		t.Error("the gateway deleted the idempotency bucket")
	}
	if s, err := approval.js.Stream(ctx(t), "KV_"+kvCfg.Bucket); err != nil {
		t.Errorf("the idempotency bucket is gone: %v", err)
	} else if err := s.Purge(short(t)); err == nil {
		t.Error("the approval service purged the idempotency bucket")
	}
	if _, err := publisher.js.KeyValue(short(t), kvCfg.Bucket); err == nil {
		t.Error("the publisher bound to the gateway's idempotency bucket")
	}
	if _, err := gateway.js.KeyValue(short(t), "OTHER"); err == nil {
		t.Error("the gateway bound to a bucket that is not its own")
	}
	if _, err := gateway.js.Publish(short(t), "$KV.OTHER.key", []byte("x")); err == nil {
		t.Error("the gateway wrote to a bucket that is not its own")
	}
}

// checkMediaBucket shows that the gateway can store and read pictures, the publisher and the approval
// service can read them, nobody but the gateway can store one, the publisher cannot delete one, and the
// approval service can (its retention sweep).
func checkMediaBucket(t *testing.T, gateway, approval, publisher client) {
	t.Helper()
	cfg := eventbus.MediaBucketConfig(stream)
	if _, err := gateway.js.CreateObjectStore(short(t), cfg); err == nil {
		t.Error("the gateway created the media bucket")
	}
	if _, err := approval.js.CreateObjectStore(ctx(t), cfg); err != nil {
		t.Fatalf("the approval service cannot create the media bucket: %v", err)
	}
	open := func(c client, who string) *media.Store {
		t.Helper()
		s, err := media.Open(ctx(t), c.js, cfg.Bucket)
		if err != nil {
			t.Fatalf("the %s cannot bind to the media bucket: %v", who, err)
		}
		return s
	}
	gw, ap, pub := open(gateway, "gateway"), open(approval, "approval service"), open(publisher, "publisher")
	name := media.ObjectName("0190a0a0-0000-7000-8000-000000000001", 0)
	ref, err := gw.Put(ctx(t), name, media.PNG, []byte("\x89PNG\r\n\x1a\npicture"))
	if err != nil {
		t.Fatalf("the gateway cannot store a picture: %v", err)
	}
	for who, s := range map[string]*media.Store{"gateway": gw, "approval service": ap, "publisher": pub} {
		if _, err := s.Get(ctx(t), ref); err != nil {
			t.Errorf("the %s cannot read a picture: %v", who, err)
		}
	}
	// Each under its own name: the approval service may write metadata (its deletions are tombstones
	// there), so a failed attempt of one could leave a record the other's Put then finds.
	for i, who := range []string{"approval service", "publisher"} {
		s := map[string]*media.Store{"approval service": ap, "publisher": pub}[who]
		forged := media.ObjectName("0190a0a0-0000-7000-8000-000000000002", i)
		if _, err := s.Put(short(t), forged, media.PNG, []byte("forged")); err == nil {
			t.Errorf("the %s stored a picture", who)
		}
		if _, err := gw.Get(ctx(t), media.Ref{Name: forged, SHA256: sha256.Sum256([]byte("forged")), Size: 6}); err == nil {
			t.Errorf("a picture the %s tried to store can be read", who)
		}
	}
	if err := pub.Delete(short(t), name); err == nil {
		if _, gerr := gw.Get(ctx(t), ref); gerr != nil {
			t.Errorf("the publisher deleted a picture: %v", gerr)
		}
	}
	if _, err := gw.Get(ctx(t), ref); err != nil {
		t.Fatalf("the picture is gone before the approval service deleted it: %v", err)
	}
	if err := ap.Delete(ctx(t), name); err != nil {
		t.Fatalf("the approval service cannot delete a picture: %v", err)
	}
	if _, err := gw.Get(ctx(t), ref); !errors.Is(err, media.ErrNotFound) {
		t.Errorf("reading a deleted picture = %v, want ErrNotFound", err)
	}
	if err := gateway.js.DeleteObjectStore(short(t), cfg.Bucket); err == nil {
		t.Error("the gateway deleted the media bucket")
	}
}

// TestProductionConfigMatchesTheGrants keeps deploy/nats/herald-auth.conf equal to what the grants say.
func TestProductionConfigMatchesTheGrants(t *testing.T) {
	want, err := natsusers.Config(stream, map[eventbus.Service]string{eventbus.ServiceApproval: "herald-approval", eventbus.ServicePublisher: "herald-publisher"})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(deployNATS, "herald-auth.conf")
	if os.Getenv("HERALD_UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (HERALD_UPDATE_GOLDEN=1 writes it)", err)
	}
	if string(got) != want {
		t.Errorf("%s differs from natsusers.Config; run the test with HERALD_UPDATE_GOLDEN=1 and commit", path)
	}
}

// TestClusterConfiguration starts three servers from deploy/nats/cluster/nats-server.conf (with the
// routes pointed at loopback ports instead of the StatefulSet's names), then checks what a deployment
// relies on: fsync on every write, the generated users and their grants, and a stream of three replicas
// created by the approval service's own user through HERALD_STREAM_REPLICAS.
func TestClusterConfiguration(t *testing.T) {
	for _, a := range accounts {
		hash, err := bcrypt.GenerateFromPassword([]byte(a.Password), 4)
		if err != nil {
			t.Fatal(err)
		}
		t.Setenv("HERALD_NATS_"+strings.ToUpper(string(a.Service))+"_PASSWORD_HASH", string(hash))
	}
	const n = 3
	routePorts := make([]int, n)
	for i := range routePorts {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		routePorts[i] = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	var routes []*url.URL
	for _, p := range routePorts {
		routes = append(routes, &url.URL{Scheme: "nats-route", Host: fmt.Sprintf("127.0.0.1:%d", p)})
	}
	servers := make([]*server.Server, n)
	for i := range n {
		t.Setenv("NATS_SERVER_NAME", fmt.Sprintf("herald-nats-%d", i))
		opts, err := server.ProcessConfigFile(filepath.Join(deployNATS, "cluster", "nats-server.conf"))
		if err != nil {
			t.Fatalf("the cluster configuration does not load: %v", err)
		}
		if !opts.JetStream || !opts.SyncAlways || opts.Cluster.Name != "herald" || len(opts.Routes) != n || opts.ServerName != fmt.Sprintf("herald-nats-%d", i) {
			t.Fatalf("cluster configuration: JetStream %v, sync always %v, cluster %q, %d routes, name %q", opts.JetStream, opts.SyncAlways, opts.Cluster.Name, len(opts.Routes), opts.ServerName)
		}
		opts.Host, opts.Port, opts.HTTPPort, opts.StoreDir = "127.0.0.1", server.RANDOM_PORT, 0, t.TempDir()
		opts.Cluster.Host, opts.Cluster.Port, opts.Routes = "127.0.0.1", routePorts[i], routes
		opts.NoLog, opts.NoSigs = true, true
		s, err := server.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		s.Start()
		t.Cleanup(s.Shutdown)
		servers[i] = s
	}
	for _, s := range servers {
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatal("a node did not start")
		}
	}
	url := servers[0].ClientURL()
	// The approval service's user creates the stream with three replicas once the cluster has a leader.
	d := eventbus.DefaultDurability()
	d.Replicas = 3
	deadline := time.Now().Add(30 * time.Second)
	var js jetstream.JetStream
	for {
		nc, j, err := eventbus.Connect(context.Background(), url, "cluster-test", eventbus.AsService(eventbus.ServiceApproval),
			eventbus.WithDurability(d), eventbus.WithNATSOptions(nats.UserInfo(accounts[1].User, accounts[1].Password)))
		if err == nil {
			t.Cleanup(nc.Close)
			js = j
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the approval service could not create its stream on the cluster: %v", err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	s, err := js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	if info := s.CachedInfo(); info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Errorf("stream: %d replicas, cluster %+v; want a leader and two replicas", info.Config.Replicas, info.Cluster)
	}
	// Every node serves Herald's users with the same grants.
	for _, s := range servers {
		gateway := connectAs(t, s.ClientURL(), accounts[0])
		if _, err := gateway.js.Stream(short(t), stream); err != nil {
			t.Errorf("the gateway cannot see the stream through %s: %v", s.Name(), err)
		}
		if _, err := gateway.js.CreateStream(short(t), eventbus.StreamConfig("OTHER")); err == nil {
			t.Errorf("the gateway created a stream through %s", s.Name())
		}
	}
}

// checkRateBucket: the approval service creates the publishers' rate bucket, the publisher swaps its
// windows there through the ratewindow package's calls, and the gateway may not touch it.
func checkRateBucket(t *testing.T, gateway, approval, publisher client) {
	t.Helper()
	cfg := eventbus.DefaultDurability().RateBucket(stream)
	if _, err := publisher.js.CreateKeyValue(short(t), cfg); err == nil {
		t.Error("the publisher created the rate bucket")
	}
	if _, err := approval.js.CreateKeyValue(ctx(t), cfg); err != nil {
		t.Fatalf("the approval service cannot create the rate bucket: %v", err)
	}
	kv, err := publisher.js.KeyValue(ctx(t), cfg.Bucket)
	if err != nil {
		t.Fatalf("the publisher cannot bind to the rate bucket: %v", err)
	}
	rev, err := kv.Create(ctx(t), "x.account", []byte(`{"limit":5,"remaining":4}`))
	if err != nil {
		t.Fatalf("the publisher cannot write a window: %v", err)
	}
	if _, err := kv.Update(ctx(t), "x.account", []byte(`{"limit":5,"remaining":3}`), rev); err != nil {
		t.Fatalf("the publisher cannot swap a window: %v", err)
	}
	if e, err := kv.Get(ctx(t), "x.account"); err != nil || !strings.Contains(string(e.Value()), `"remaining":3`) {
		t.Fatalf("the publisher reads its window as %v, %v", e, err)
	}
	if _, err := gateway.js.KeyValue(short(t), cfg.Bucket); err == nil {
		t.Error("the gateway bound to the publishers' rate bucket")
	}
	if _, err := gateway.js.Publish(short(t), "$KV."+cfg.Bucket+".x.account", []byte(`{"remaining":100}`)); err == nil {
		t.Error("the gateway wrote a rate window")
	}
	if err := publisher.js.DeleteKeyValue(short(t), cfg.Bucket); err == nil {
		t.Error("the publisher deleted the rate bucket")
	}
}
