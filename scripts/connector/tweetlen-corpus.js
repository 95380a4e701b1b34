// Computes twitter-text's parseTweet for every text of the tweet-length corpus and writes the expected
// results next to it, for the Go counter's test (services/heraldshared/tweetlen). Run from this
// directory after `npm ci`, whenever corpus-input.json changes:
//
//   node tweetlen-corpus.js
'use strict';
const fs = require('fs');
const path = require('path');
const twttr = require('twitter-text');

const dir = path.join(__dirname, '..', '..', 'services', 'heraldshared', 'tweetlen', 'testdata');
const input = JSON.parse(fs.readFileSync(path.join(dir, 'corpus-input.json'), 'utf8'));
const version = require('twitter-text/package.json').version;
const cases = input.map(({ name, text }) => {
  // parseTweet's defaults are config v3, the one X uses.
  const r = twttr.parseTweet(text);
  return { name, text, weightedLength: r.weightedLength, valid: r.valid };
});
const out = { generator: `scripts/connector/tweetlen-corpus.js with twitter-text ${version} (parseTweet, config v3)`, cases };
fs.writeFileSync(path.join(dir, 'corpus.json'), JSON.stringify(out, null, 1) + '\n');
console.log(`wrote ${cases.length} cases`);
