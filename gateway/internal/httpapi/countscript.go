package httpapi

import (
	"crypto/sha256"
	"encoding/base64"
	"html/template"
)

// countScript counts the edited text live on the approval page, as twitter-text's v3 configuration does
// in the main: NFC, code points in the Latin and general punctuation ranges count 1, others (CJK, emoji)
// 2, a link 23. Emoji sequences may count higher here than on X; the approval service's count, which
// refuses an edit that is too long, decides.
const countScript = `(function () {
  var t = document.getElementById("text"), out = document.getElementById("count"), max = 280;
  var light = [[0, 4351], [8192, 8205], [8208, 8223], [8242, 8247]];
  function weigh(s) {
    var n = 0, cps = Array.from(s.normalize("NFC").replace(/https?:\/\/\S+/g, ""));
    for (var i = 0; i < cps.length; i++) {
      var c = cps[i].codePointAt(0), w = 2;
      for (var j = 0; j < light.length; j++) { if (c >= light[j][0] && c <= light[j][1]) { w = 1; break; } }
      n += w;
    }
    return n + 23 * (s.match(/https?:\/\/\S+/g) || []).length;
  }
  function update() {
    var n = weigh(t.value);
    out.textContent = n + " of " + max + " characters as X counts them" + (n > max ? ": too long" : "");
    t.setAttribute("aria-invalid", n > max ? "true" : "false");
  }
  t.addEventListener("input", update);
  update();
})();`

// countScriptHash is the script's CSP source: the page allows this one inline script and nothing else.
var countScriptHash = func() string {
	sum := sha256.Sum256([]byte(countScript))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}()

// contentSecurityPolicy allows no external asset; the only script is countScript, by its hash.
// Pictures come from the gateway itself (img-src 'self'), never from elsewhere.
var contentSecurityPolicy = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; script-src " + countScriptHash + "; form-action 'self'; frame-ancestors 'none'"

var countScriptJS = template.JS(countScript)
