package momentoserver_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/ringbus/topics"
	"github.com/ringbus/topics/access"
	"github.com/ringbus/topics/momentoserver"
)

// conformanceRequiredEnv, set to 1 (CI sets it), makes a missing Node.js or
// SDK fail TestNodeSDKConformance instead of skipping it.
const conformanceRequiredEnv = "MOMENTO_CONFORMANCE_REQUIRED"

// TestNodeSDKConformance runs conformance/conformance.mjs, which drives the
// real Momento Node.js SDK (installed there by npm ci from its lock file)
// against two servers: one that demands tokens and one in local mode.
func TestNodeSDKConformance(t *testing.T) {
	required := os.Getenv(conformanceRequiredEnv) == "1"
	node, err := exec.LookPath("node")
	if err != nil {
		if required {
			t.Fatalf("node not found, and %s=1: install Node.js (apt-get install nodejs npm)", conformanceRequiredEnv)
		}
		t.Skipf("node not found (set %s=1 to make this a failure)", conformanceRequiredEnv)
	}
	sdk := filepath.Join("conformance", "node_modules", "@gomomento", "sdk", "package.json")
	if _, err := os.Stat(sdk); err != nil {
		t.Fatalf("the Momento Node.js SDK is not installed: run npm ci in momentoserver/conformance (%v)", err)
	}

	h := startServer(t, harnessConfig{serverOpts: []momentoserver.Option{momentoserver.WithHeartbeat(time.Second)}})
	const slow = "slow"
	h.cache(slow, topics.WithRingSize(16))
	local := startServer(t, harnessConfig{local: true})

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "conformance.mjs")
	cmd.Dir = "conformance"
	cmd.Env = append(os.Environ(),
		"MOMENTO_ENDPOINT="+h.addr,
		"MOMENTO_ADMIN_TOKEN="+momentoserver.SDKToken(h.token("admin", admin), h.addr),
		"MOMENTO_ADA_TOKEN="+momentoserver.SDKToken(h.token("ada", grant(access.PublishSubscribe, "conformance", access.TopicPrefix("open/"))), h.addr),
		"MOMENTO_SLOW_CACHE="+slow,
		"MOMENTO_LOCAL_ENDPOINT="+local.addr,
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("conformance.mjs: %v\n%s", err, out)
	}
	t.Logf("conformance.mjs:\n%s", out)
}
