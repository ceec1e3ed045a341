# Regression: 20,000 zero-length DATA frames on a stream (CVE-2019-9518) and
# 20,000 PRIORITY frames were accepted. Envoy's flood limits now apply with
# its defaults and stat names: max_consecutive_inbound_frames_with_empty_payload
# (1), max_inbound_priority_frames_per_stream (100),
# max_inbound_window_update_frames_per_data_frame_sent (10); past one, GOAWAY
# ENHANCE_YOUR_CALM and the connection closes. Ordinary HTTP/2 traffic is
# unaffected.
use strict;
use warnings;
use Test::More;
use Wingman;

my ($p, $p2, $adm) = map { free_port() } 1 .. 3;
my $wm = start_wingman(<<"EOF");
workers: 1
admin: { address: 127.0.0.1:$adm }
listeners:
  - { name: l, address: 127.0.0.1:$p, routes: [{ match: { prefix: / }, direct_response: { status: 200, body: ok } }] }
  - name: lax
    address: 127.0.0.1:$p2
    http2: { max_consecutive_inbound_frames_with_empty_payload: 100000, max_inbound_priority_frames_per_stream: 100000,
             max_inbound_window_update_frames_per_data_frame_sent: 100000, max_outbound_frames: 20000,
             max_outbound_control_frames: 2000 }
    routes: [{ match: { prefix: / }, direct_response: { status: 200, body: ok } }]
EOF

my $post = h2_headers_block(':method' => 'POST', ':scheme' => 'http', ':authority' => 'a', ':path' => '/');

# Sends $bytes, returns (GOAWAY error code or undef, all frames read).
sub run_h2 {
	my ($port, $bytes) = @_;
	my ($resp) = http_raw($port, $bytes, timeout => scale(3));
	my @f = h2_frames($resp);
	my ($goaway) = grep { $_->[0] == 7 } @f;
	return ($goaway ? unpack('x4N', $goaway->[3]) : undef, \@f);
}

my ($code) = run_h2($p, h2_client_preface() . h2_frame(1, 0x4, 1, $post) . (h2_frame(0, 0, 1, '') x 20000));
is($code, 0xb, '20,000 empty DATA frames: GOAWAY ENHANCE_YOUR_CALM');
is($wm->stat('http.l.http2.inbound_empty_frames_flood'), 1, 'http2.inbound_empty_frames_flood');

my $prio = h2_frame(2, 0, 3, pack('NC', 0, 15));
($code) = run_h2($p, h2_client_preface() . ($prio x 20000));
is($code, 0xb, '20,000 PRIORITY frames: GOAWAY ENHANCE_YOUR_CALM');
is($wm->stat('http.l.http2.inbound_priority_frames_flood'), 1, 'http2.inbound_priority_frames_flood');

my $wu = h2_frame(8, 0, 0, pack('N', 1));
($code) = run_h2($p, h2_client_preface() . ($wu x 1000));
is($code, 0xb, '1,000 WINDOW_UPDATE frames with no data sent: GOAWAY ENHANCE_YOUR_CALM');
is($wm->stat('http.l.http2.inbound_window_update_frames_flood'), 1, 'http2.inbound_window_update_frames_flood');

# Within the limits: one empty DATA between real ones, a few PRIORITY frames.
my $ok_bytes = h2_client_preface() . h2_frame(1, 0x4, 1, $post) . h2_frame(0, 0, 1, 'a') . h2_frame(0, 0, 1, '')
	. h2_frame(0, 0, 1, 'b') . ($prio x 50) . h2_frame(0, 0x1, 1, '');
my ($c2, $frames) = run_h2($p, $ok_bytes);
ok(!defined $c2 || $c2 == 0, 'within the limits: no flood GOAWAY');
ok((grep { $_->[0] == 1 && $_->[2] == 1 } @$frames), 'within the limits: the request is answered');

# The limits are per listener and configurable.
($code) = run_h2($p2, h2_client_preface() . h2_frame(1, 0x4, 1, $post) . (h2_frame(0, 0, 1, '') x 2000) . h2_frame(0, 0x1, 1, ''));
ok(!defined $code || $code == 0, 'raised max_consecutive_inbound_frames_with_empty_payload accepts them');
# WINDOW_UPDATEs are allowed in proportion to the DATA frames sent: one
# answered GET, then 1000 of them.
my $get = h2_headers_block(':method' => 'GET', ':scheme' => 'http', ':authority' => 'a', ':path' => '/');
my ($resp) = http_raw($p2, [h2_client_preface() . h2_frame(1, 0x5, 1, $get), $wu x 1000], pause => 0.5,
		      timeout => scale(2));
($code) = map { unpack('x4N', $_->[3]) } grep { $_->[0] == 7 } h2_frames($resp);
ok(!defined $code || $code == 0, 'raised max_inbound_window_update_frames_per_data_frame_sent accepts them');
($resp) = http_raw($p, [h2_client_preface() . h2_frame(1, 0x5, 1, $get), $wu x 1000], pause => 0.5, timeout => scale(2));
($code) = map { unpack('x4N', $_->[3]) } grep { $_->[0] == 7 } h2_frames($resp);
is($code, 0xb, 'the default (10 per DATA frame sent) does not');
is($wm->stat('http.lax.http2.inbound_empty_frames_flood') + $wm->stat('http.lax.http2.inbound_window_update_frames_flood'),
   0, 'nothing counted there');

# Ordinary clients are unaffected.
SKIP: {
	skip 'h2load not found', 1 unless have_prog('h2load');
	my $out = `h2load -n 2000 -c 4 -m 20 http://127.0.0.1:$p/ 2>&1`;
	like($out, qr/status codes: 2000 2xx/, 'h2load: 2000 requests, all 2xx');
}
ok($wm->alive, 'wingman is still running');

done_testing();
