package Test::Nginx::Socket;

# A local work-alike of CPAN's Test::Nginx::Socket: the same block format,
# exported functions and test names, on Debian's Test::Base.  It sends the
# requests over a plain TCP socket (HTTP/1.x) and checks the responses and
# nginx's error log.  See Test::Nginx::Util for the server side.

use v5.10.1;
use Test::Base -base;

our $VERSION = '0.29';

use Encode ();
use HTTP::Response ();
use IO::Select ();
use IO::Socket::INET ();
use List::Util qw(min);
use POSIX qw(EAGAIN EINTR EWOULDBLOCK);
use Time::HiRes qw(sleep time);
use Test::More ();

use Test::Nginx::Util;

our @EXPORT = qw(
    env_to_nginx is_str plan run_tests run_test repeat_each
    config_preamble worker_connections master_process_enabled
    no_long_string workers master_on master_off log_level no_shuffle
    no_root_location use_hup server_name server_addr server_root
    html_dir server_port server_port_for_client timeout
    no_nginx_manager check_accum_error_log add_block_preprocessor
    bail_out add_cleanup_handler add_response_body_check
);

our @ResponseBodyChecks;

$Test::Nginx::Util::RunTestHelper = \&run_test_helper;
$Test::Nginx::Util::CheckErrorLog = \&check_error_log;
$Test::Nginx::Util::CheckShutdownErrorLog = \&check_shutdown_error_log;

sub add_response_body_check ($) {
    push @ResponseBodyChecks, shift;
}

sub set_http_config_filter ($) {
    $Test::Nginx::Util::FilterHttpConfig = shift;
}

# ---------------------------------------------------------------------
# Building requests

# "Name: value" lines -> (CRLF header text, is the body chunked).
sub parse_more_headers ($) {
    my $text = shift;
    my ($out, $chunked) = ('', 0);
    for my $line (split /\n+/, $text) {
        next if $line =~ /^\s*#/;
        my ($key, $val) = split /:\s*/, $line, 2;
        $val //= '';
        $chunked = 1 if lc($key) eq 'transfer-encoding' && $val eq 'chunked';
        $out .= "$key: $val\r\n";
    }
    return ($out, $chunked);
}

# Turns "METHOD [URI [VERSION]]\nbody" split in packets into a complete
# request split at the corresponding places.  Each packet is
# { value => STRING, delay_before => SECONDS (optional) }.
sub build_request ($$$$$) {
    my ($name, $hdrs, $chunked, $conn, $packets) = @_;

    my $orig = join '', map { $_->{value} } @$packets;

    $orig =~ /\A(\s*)/;
    my $lead = length $1;
    my $nl = index $orig, "\n", $lead;
    my $line_end = $nl < 0 ? length $orig : $nl + 1;
    my $first = substr $orig, $lead, $line_end - $lead;
    my $content = substr $orig, $line_end;

    if ($first eq '') {
        bail_out("$name - Request line should be non-empty");
    }
    my @words = split ' ', $first;
    my ($meth, $uri, $ver) = @words;
    if ($first !~ /^\S+(?: +\S+(?: +\S+)?)? *\s*$/) {
        bail_out("$name - Request line is not valid. Should be "
                 . "'meth [url [version]]' but got \"$first\".");
    }
    $uri //= '/';
    $ver //= 'HTTP/1.1';

    my ($trim_lead, $len_hdr) = (0, '');
    if (!$chunked && $content ne ''
        && $hdrs !~ /(?:^|\n)Content-Length:/)
    {
        $content =~ /\A(\s*)/;
        $trim_lead = length $1;
        $content =~ s/^\s+|\s+$//gs;
        $len_hdr = "Content-Length: " . length($content) . "\r\n";
    }

    $hdrs =~ s/(?<!\r)\n/\r\n/g;
    my $head = "$meth $uri $ver\r\n";
    my $line_len = length($head) - 2;
    $head .= "Host: $Test::Nginx::Util::ServerName\r\n"
        if $hdrs !~ /(?:^|\n)Host:/mi;
    $head .= "Connection: $conn\r\n"
        if $hdrs !~ /(?:^|\n)Connection/mi;
    $head .= "$hdrs$len_hdr\r\n";

    my $req = $head . $content;

    # Map each packet boundary of the original text into the new one.
    my @cuts;
    my $off = 0;
    for my $p (@$packets[0 .. $#$packets - 1]) {
        $off += length $p->{value};
        my $at;
        if ($off < $line_end) {
            my $in_line = $off - $lead;
            $in_line = 0 if $in_line < 0;
            $at = min($in_line, $line_len);
        } else {
            $at = length($head) + $off - $line_end - $trim_lead;
            $at = length $head if $at < length $head;
            $at = length $req if $at > length $req;
        }
        $at = $cuts[-1] if @cuts && $at < $cuts[-1];
        push @cuts, $at;
    }
    push @cuts, length $req;

    my @out;
    my $prev = 0;
    for my $i (0 .. $#cuts) {
        my %p = %{ $packets->[$i] };
        $p{value} = substr $req, $prev, $cuts[$i] - $prev;
        $prev = $cuts[$i];
        push @out, \%p;
    }
    return \@out;
}

sub headers_for ($$$) {
    my ($name, $more, $i) = @_;
    if (ref $more eq 'ARRAY') {
        my $h = $more->[$i];
        bail_out("$name - --- more_headers lacks data for the ${i}th "
                 . "request") unless defined $h;
        return parse_more_headers($h);
    }
    return parse_more_headers($more);
}

# Returns a list of requests, each a list of packets.
sub get_req_from_block ($) {
    my $block = shift;
    my $name = $block->name;

    if (defined(my $raw = $block->raw_request)) {
        if (ref $raw eq 'ARRAY') {
            return [[ map { { value => $_ } } @$raw ]];
        }
        return [[ { value => $raw } ]];
    }

    my $more = $block->more_headers // '';
    my @reqs;

    if (my $pipelined = $block->pipelined_requests) {
        bail_out("$name - invalid entries in --- pipelined_requests")
            unless ref $pipelined eq 'ARRAY';
        my $all = '';
        for my $i (0 .. $#$pipelined) {
            my ($hdr, $chunked) = headers_for($name, $more, $i);
            my $conn = $i == $#$pipelined ? 'close' : 'keep-alive';
            my $r = build_request($name, $hdr, $chunked, $conn,
                                  [{ value => $pipelined->[$i] }]);
            $all .= $r->[0]{value};
        }
        return [[ { value => $all } ]];
    }

    my $request = $block->request;
    if (defined $block->request_eval) {
        Test::More::diag("$name - request_eval DEPRECATED. Use request "
                         . "eval instead.");
        $request = eval $block->request_eval;
        warn $@ if $@;
    }
    bail_out("$name - request empty") unless defined $request;

    if (!ref $request) {
        1 while $request =~ s/^\s*#[^\n]+\s+|^\s+//s;
        my ($hdr, $chunked) = headers_for($name, $more, 0);
        return [ build_request($name, $hdr, $chunked, 'close',
                               [{ value => $request }]) ];
    }

    bail_out("$name - invalid ---request : MUST be string or array of "
             . "requests") unless ref $request eq 'ARRAY';

    for my $i (0 .. $#$request) {
        my $one = $request->[$i];
        my ($hdr, $chunked) = headers_for($name, $more, $i);
        my @packets;
        if (!ref $one) {
            @packets = ({ value => $one });
        } elsif (ref $one eq 'ARRAY') {
            for my $p (@$one) {
                if (!ref $p) {
                    push @packets, { value => $p };
                } elsif (ref $p eq 'HASH') {
                    push @packets, { %$p };
                } else {
                    bail_out("$name - Invalid syntax. $p should be a "
                             . "string or hash with value.");
                }
            }
        } else {
            bail_out("$name - Invalid syntax. $one should be a string or "
                     . "an array of packets.");
        }
        push @reqs, build_request($name, $hdr, $chunked, 'close',
                                  \@packets);
    }
    return \@reqs;
}

# ---------------------------------------------------------------------
# Sending

sub connect_server ($$) {
    my ($block, $timeout) = @_;
    my $addr = $block->server_addr_for_client
               // $Test::Nginx::Util::ServerAddr;
    my $port = $Test::Nginx::Util::ServerPortForClient;

    # nginx may still be starting (slowly so under valgrind).
    my $deadline = time + $Test::Nginx::Util::StartTimeout;
    my $err;
    while (1) {
        my $sock = IO::Socket::INET->new(PeerAddr => $addr,
                                         PeerPort => $port,
                                         Proto => 'tcp',
                                         Timeout => $timeout);
        return $sock if $sock;
        $err = $!;
        last if time >= $deadline;
        sleep 0.05;
    }
    return (undef, "Can't connect to $addr:$port: $err");
}

# Sends one request (a list of packets) and reads until the server closes
# the connection.  $timeout bounds the wait for each I/O event, like
# CPAN's; a total cap keeps a trickling server from hanging the run.
sub send_request ($$$$) {
    my ($packets, $middle_delay, $timeout, $block) = @_;
    my $name = $block->name;

    my $all = join '', map { $_->{value} } @$packets;
    my $head_req = $all =~ /^\s*HEAD\s+/ ? 1 : 0;

    my ($sock, $err) = connect_server($block, $timeout);
    if (!$sock) {
        Test::More::fail("$name - $err (aborted)\n");
        return (undef, $head_req);
    }
    $sock->blocking(0);
    local $SIG{PIPE} = 'IGNORE';

    my @queue = map { { %$_ } } @$packets;
    my $cur = shift @queue;
    my $written = 0;
    my $resp = '';
    my $reading = 1;
    my $cap = time + ($timeout * 10 > 30 ? $timeout * 10 : 30);

    while ($reading) {
        my $rsel = IO::Select->new($sock);
        my $wsel = $cur ? IO::Select->new($sock) : undef;
        $! = 0;
        my ($r, $w) = IO::Select->select($rsel, $wsel, undef, $timeout);

        if (!$r && !$w) {
            next if $! == EINTR;
            if (!defined $block->abort) {
                Test::More::fail("ERROR: client socket timed out - $name\n");
            }
            last;
        }

        if ($w && @$w && $cur) {
            my $n = syswrite($sock, $cur->{value},
                             length($cur->{value}) - $written, $written);
            if (!defined $n) {
                if ($! != EAGAIN && $! != EWOULDBLOCK && $! != EINTR) {
                    warn "write failed: $!\n";
                    undef $cur;
                    @queue = ();
                }
            } else {
                $written += $n;
            }
            if ($cur && $written >= length $cur->{value}) {
                $cur = shift @queue;
                $written = 0;
                if ($cur) {
                    my $delay = $cur->{delay_before} // $middle_delay;
                    sleep $delay if $delay;
                } elsif (defined(my $how = $block->shutdown)) {
                    $how = 1 if $how eq '';
                    shutdown($sock, $how);
                }
            }
        }

        if ($r && @$r) {
            my $n = sysread($sock, my $buf, 4096);
            if (!defined $n) {
                next if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
                warn "WARNING: $name - HTTP response read failure: $!\n";
                last;
            }
            last if $n == 0;
            $resp .= $buf;
        }

        if (time > $cap) {
            Test::More::fail("ERROR: client socket timed out - $name "
                             . "(total time cap)\n");
            last;
        }
    }

    close $sock;
    return ($resp, $head_req);
}

# ---------------------------------------------------------------------
# Parsing responses

# Returns (HTTP::Response, raw header text, bytes after this response).
sub parse_response ($$$) {
    my ($name, $raw, $head_req) = @_;

    my $raw_headers = $raw =~ /(.*?\r\n)\r\n/s ? $1 : '';
    my $res = HTTP::Response->parse($raw);
    my $left;

    my $code = $res->code;
    if (defined $code && $code !~ /^\d+$/) {
        undef $code;
        $res->code(undef);
    }
    return ($res, $raw_headers) if $code && ($code == 304 || $code == 101);

    my $te = $res->header('Transfer-Encoding');
    my $len = $res->header('Content-Length');

    if (defined $te && $te eq 'chunked') {
        my $body = $res->content // '';
        my $decoded = '';
        my $pos = 0;
        while (1) {
            pos($body) = $pos;
            if ($body =~ /\G0[ \t]*\r\n\r\n/gc) {
                $left = substr $body, pos($body)
                    if pos($body) < length $body;
                last;
            }
            pos($body) = $pos;
            if ($body =~ /\G[ \t]*([A-Fa-f0-9]+)[ \t]*\r\n/gc) {
                my $size = hex $1;
                my $start = pos($body);
                if (length($body) - $start < $size) {
                    Test::More::fail("$name - invalid chunked data received "
                                     . "(not enought octets for the data "
                                     . "section)");
                    return;
                }
                $decoded .= substr $body, $start, $size;
                $pos = $start + $size;
                if (substr($body, $pos, 2) ne "\r\n") {
                    Test::More::fail("$name - invalid chunked data received "
                                     . "(expected CRLF).");
                    return;
                }
                $pos += 2;
                next;
            }
            if ($pos < length $body) {
                Test::More::fail("$name - invalid chunked body received: "
                                 . substr($body, $pos));
            } else {
                Test::More::fail("$name - no last chunk found - $body");
            }
            return;
        }
        $res->content($decoded);

    } elsif (defined $len && $len =~ /^\d+$/) {
        my $body = $res->content // '';
        if (length $body < $len) {
            warn "WARNING: $name - response body truncated: $len expected, "
                 . "but got " . length($body) . "\n" unless $head_req;
        } elsif (length $body > $len) {
            $left = substr $body, $len;
            $res->content(substr $body, 0, $len);
        }
    }

    return ($res, $raw_headers, $left);
}

# ---------------------------------------------------------------------
# Checks

sub get_indexed_value ($$$$) {
    my ($name, $value, $idx, $need_array) = @_;
    if ($need_array) {
        return $value->[$idx] if ref $value eq 'ARRAY';
        bail_out("$name - You asked for many requests, the expected results "
                 . "should be arrays as well.");
    }
    return $value->[0] if ref $value eq 'ARRAY';
    return $value;
}

sub subst_ports ($) {
    my $s = shift;
    return $s if !defined $s || ref $s;
    $s =~ s/\$ServerPortForClient\b/$Test::Nginx::Util::ServerPortForClient/g;
    $s =~ s/\$ServerPort\b/$Test::Nginx::Util::ServerPort/g;
    return $s;
}

sub check_error_code ($$$$$) {
    my ($block, $res, $dry_run, $idx, $need_array) = @_;
    my $name = $block->name;
    my $code = ($res && $res->code) || '';
    SKIP: {
        Test::More::skip("$name - tests skipped due to $dry_run", 1)
            if $dry_run;
        if (defined $block->error_code_like) {
            my $pat = get_indexed_value($name, $block->error_code_like, $idx,
                                        $need_array);
            Test::More::like($code, qr/$pat/sm, "$name - status code ok");
        } elsif (defined $block->error_code) {
            Test::More::is($code, get_indexed_value($name, $block->error_code,
                                                    $idx, $need_array),
                           "$name - status code ok");
        } else {
            Test::More::is($code, 200, "$name - status code ok");
        }
    }
}

sub check_raw_response_headers ($$$$$) {
    my ($block, $raw, $dry_run, $idx, $need_array) = @_;
    my $name = $block->name;
    for my $kind (qw(like unlike)) {
        my $sect = "raw_response_headers_$kind";
        next unless defined $block->$sect;
        SKIP: {
            Test::More::skip("$name - $sect - tests skipped due to $dry_run",
                             1) if $dry_run;
            my $pat = get_indexed_value($name, $block->$sect, $idx,
                                        $need_array);
            if ($kind eq 'like') {
                Test::More::like($raw, qr/$pat/s,
                                 "$name - raw resp headers like");
            } else {
                Test::More::unlike($raw, qr/$pat/s,
                                   "$name - raw resp headers unlike");
            }
        }
    }
}

sub check_response_headers ($$$$$$) {
    my ($block, $res, $raw, $dry_run, $idx, $need_array) = @_;
    my $name = $block->name;

    if (defined $block->response_headers) {
        my $hdrs = parse_headers(get_indexed_value($name,
                                                   $block->response_headers,
                                                   $idx, $need_array));
        for my $key (sort keys %$hdrs) {
            my $val = $hdrs->{$key};
            SKIP: {
                Test::More::skip("$name - response_headers - tests skipped "
                                 . "due to $dry_run", 1) if $dry_run;
                if (!defined $val) {
                    Test::More::unlike($raw, qr/^\s*\Q$key\E\s*:/ms,
                        "$name - header $key not present in the raw headers");
                } else {
                    my $got = $res ? $res->header($key) : undef;
                    Test::More::is($got // '', subst_ports($val),
                                   "$name - header $key ok");
                }
            }
        }

    } elsif (defined $block->response_headers_like) {
        my $hdrs = parse_headers(get_indexed_value($name,
                                     $block->response_headers_like, $idx,
                                     $need_array));
        for my $key (sort keys %$hdrs) {
            my $val = $hdrs->{$key};
            my $got = $res ? $res->header($key) : undef;
            SKIP: {
                Test::More::skip("$name - response_headers_like - tests "
                                 . "skipped due to $dry_run", 1) if $dry_run;
                Test::More::like($got // '', qr/^$val$/,
                                 "$name - header $key like ok");
            }
        }
    }
}

sub run_filter ($$$) {
    my ($name, $filter, $content) = @_;
    return $filter->($content) if ref $filter eq 'CODE';
    bail_out("$name - the --- response_body_filters section only supports "
             . "subroutine reference values and string values") if ref $filter;

    my %builtin = (
        md5_hex  => sub { require Digest::MD5; Digest::MD5::md5_hex($_[0]) },
        sha1_hex => sub { require Digest::SHA; Digest::SHA::sha1_hex($_[0]) },
        uc       => sub { uc $_[0] },
        lc       => sub { lc $_[0] },
        ucfirst  => sub { ucfirst $_[0] },
        lcfirst  => sub { lcfirst $_[0] },
        length   => sub { length $_[0] },
    );
    my $f = $builtin{$filter}
        or bail_out("$name - unknown filter, \"$filter\", specified in the "
                    . "--- response_body_filters section");
    return $f->($content);
}

sub transform_response_body ($$$) {
    my ($block, $res, $idx) = @_;
    return unless $res && defined $res->content;
    my $filters = $block->response_body_filters;
    return unless defined $filters;
    my $name = $block->name;

    if (!ref $filters) {
        $filters =~ s/^\s+|\s+$//g;
        $filters = [split /\s+/, $filters];
    } elsif (ref $filters ne 'ARRAY') {
        $filters = [$filters];
    }

    my $list = $filters;
    if (ref $filters->[0] eq 'ARRAY') {
        $list = $filters->[$idx];
        bail_out("$name - the ---response_body_filters two-dimensional "
                 . "array unmatch the specified request($idx)")
            unless defined $list;
    }

    my $content = $res->content;
    $content = run_filter($name, $_, $content) for @$list;
    $res->content($content);
}

sub check_response_body ($$$$$$) {
    my ($block, $res, $dry_run, $idx, $rep, $need_array) = @_;
    my $name = $block->name;

    my $content = $res ? $res->content : undef;

    if (defined $block->response_body || defined $block->response_body_eval) {
        my $expected;
        if ($block->response_body_eval) {
            Test::More::diag("$name - response_body_eval is DEPRECATED. "
                             . "Use response_body eval instead.");
            $expected = eval get_indexed_value($name,
                                               $block->response_body_eval,
                                               $idx, $need_array);
            warn $@ if $@;
        } else {
            $expected = get_indexed_value($name, $block->response_body, $idx,
                                          $need_array);
        }
        if ($block->charset) {
            Encode::from_to($expected, 'UTF-8', $block->charset);
        }
        $expected = subst_ports($expected);

        SKIP: {
            Test::More::skip("$name - response_body - tests skipped due to "
                             . "$dry_run", 1) if $dry_run;
            if (ref $expected) {
                Test::More::like($content, $expected,
                    "$name - response_body - like (repeated req $rep, "
                    . "req $idx)");
            } else {
                is_str($content, $expected,
                       "$name - response_body - response is expected "
                       . "(repeated req $rep, req $idx)");
            }
        }

    } elsif (defined $block->response_body_like
             || defined $block->response_body_unlike)
    {
        my $type = defined $block->response_body_like ? 'like' : 'unlike';
        my $sect = "response_body_$type";
        my $pat = subst_ports(get_indexed_value($name, $block->$sect, $idx,
                                                $need_array));
        my $summary = trim($content) // '';
        SKIP: {
            Test::More::skip("$name - $sect - tests skipped due to "
                             . "$dry_run", 1) if $dry_run;
            my $desc = "$name - $sect - response is expected ($summary)";
            if ($type eq 'like') {
                Test::More::like($content, qr/$pat/s, $desc);
            } else {
                Test::More::unlike($content, qr/$pat/s, $desc);
            }
        }
    }

    for my $check (@ResponseBodyChecks) {
        $check->($block, $content, $idx, $rep, $dry_run);
    }
}

sub fmt_str ($) {
    my $s = shift;
    chomp $s;
    $s =~ s/"/\\"/g;
    $s =~ s/\r/\\r/g;
    $s =~ s/\n/\\n/g;
    return $s;
}

sub to_patterns ($) {
    my $pats = shift;
    if (!ref $pats) {
        chomp $pats;
        return [split /\n+/, $pats];
    }
    return [$pats] if ref $pats eq 'Regexp';
    return [@$pats];
}

sub line_matches ($$) {
    my ($line, $pat) = @_;
    return ref $pat ? $line =~ /$pat/ : index($line, $pat) >= 0;
}

sub value_contains ($$);
sub value_contains ($$) {
    my ($val, $str) = @_;
    if (ref $val eq 'ARRAY') {
        for my $v (@$val) {
            return 1 if value_contains($v, $str);
        }
        return 0;
    }
    return index("$val", $str) >= 0;
}

# $log is { lines => [...], file => 'error.log', tag => ' (req N)' }.
# Every pattern must match some line: one pass or fail per pattern.
sub check_log_has ($$$$$) {
    my ($name, $what, $log, $pats, $dry_run) = @_;
    my ($file, $tag) = ($log->{file}, $log->{tag});
    $pats = to_patterns($pats);
    for my $line (@{ $log->{lines} }) {
        for my $p (@$pats) {
            next unless defined $p && line_matches($line, $p);
            SKIP: {
                Test::More::skip("$name - $what - tests skipped due to "
                                 . "$dry_run", 1) if $dry_run;
                Test::More::pass("$name - pattern \"$p\" matches a line in "
                                 . "$file$tag");
            }
            undef $p;
        }
    }
    for my $p (grep { defined } @$pats) {
        SKIP: {
            Test::More::skip("$name - $what - tests skipped due to "
                             . "$dry_run", 1) if $dry_run;
            Test::More::fail("$name - pattern \"$p\" should match a line in "
                             . "$file$tag");
        }
    }
}

# No pattern may match any line: a fail per matching line, else a pass.
sub check_log_lacks ($$$$$$) {
    my ($name, $what, $log, $pats, $dry_run, $context) = @_;
    my ($lines, $file, $tag) = @$log{qw(lines file tag)};
    $pats = to_patterns($pats);
    my %found;
    for my $i (0 .. $#$lines) {
        my $line = $lines->[$i];
        for my $p (@$pats) {
            next unless defined $p && line_matches($line, $p);
            $found{$p} = 1;
            SKIP: {
                Test::More::skip("$name - $what - tests skipped due to "
                                 . "$dry_run ($line)", 1) if $dry_run;
                my $msg = "$name - pattern \"" . fmt_str($p)
                    . "\" should not match any line in $file but matches "
                    . "line \"" . fmt_str($line) . "\"$tag";
                if ($context) {
                    my $last = min($i + 9, $#$lines - 1);
                    $msg .= "\n" . join '', @$lines[$i + 1 .. $last];
                }
                Test::More::fail($msg);
            }
        }
    }
    for my $p (@$pats) {
        next if !defined $p || $found{$p};
        SKIP: {
            Test::More::skip("$name - $what - tests skipped due to "
                             . "$dry_run", 1) if $dry_run;
            Test::More::pass("$name - pattern \"" . fmt_str($p)
                             . "\" does not match a line in $file$tag");
        }
    }
}

sub check_error_log ($$$$$) {
    my ($block, $res, $dry_run, $rep, $need_array) = @_;
    my $name = $block->name;
    my $lines;

    my $grep_pat = $block->grep_error_log;
    if (ref $grep_pat eq 'ARRAY') {
        $grep_pat = $grep_pat->[$rep];
    }
    if (!defined $block->grep_error_log
        && defined $block->grep_error_log_out)
    {
        bail_out("$name - No --- grep_error_log defined but "
                 . "--- grep_error_log_out is defined");
    }

    if (defined $grep_pat) {
        my $expected = $block->grep_error_log_out;
        bail_out("$name - No --- grep_error_log_out defined but "
                 . "--- grep_error_log is defined") unless defined $expected;
        $expected = $expected->[$rep] if ref $expected eq 'ARRAY';

        SKIP: {
            Test::More::skip("$name - error_log - tests skipped due to "
                             . "$dry_run", 1) if $dry_run;
            $lines //= error_log_data();
            my $out = '';
            for my $line (@$lines) {
                my $m;
                if (ref $grep_pat) {
                    $m = $& if $line =~ /$grep_pat/;
                } elsif (index($line, $grep_pat) >= 0) {
                    $m = $grep_pat;
                }
                $out .= "$m\n" if defined $m && $m !~ /\n/;
            }
            my $desc = "$name - grep_error_log_out (req $rep)";
            if (ref $expected eq 'Regexp') {
                Test::More::like($out, $expected, $desc);
            } else {
                is_str($out, $expected, $desc);
            }
        }
    }

    my %warn_on = ('[alert]' => 1, '[crit]' => 1, '[emerg]' => 1);
    for my $sect (qw(error_log no_error_log)) {
        my $pats = $block->$sect;
        next unless defined $pats;
        for my $lvl (qw(alert crit emerg)) {
            delete $warn_on{"[$lvl]"} if value_contains($pats, "[$lvl");
        }
        $lines //= error_log_data();
        my $log = { lines => $lines, file => 'error.log',
                    tag => " (req $rep)" };
        if ($sect eq 'error_log') {
            check_log_has($name, $sect, $log, $pats, $dry_run);
        } else {
            check_log_lacks($name, $sect, $log, $pats, $dry_run, 1);
        }
    }

    if (!$dry_run && %warn_on) {
        $lines //= error_log_data();
        for my $line (@$lines) {
            for my $tag (sort keys %warn_on) {
                warn "WARNING: $name - " . fmt_str($line) . "\n"
                    if index($line, $tag) >= 0;
            }
        }
    }

    for my $line (@{ $lines || [] }) {
        if ($line =~ /\bAssertion .*?failed\b/) {
            chomp(my $l = $line);
            Test::More::fail("$name - $l\n");
        }
    }
}

sub check_access_log ($$$) {
    my ($block, $dry_run, $rep) = @_;
    my $name = $block->name;
    my $lines;
    if (defined $block->access_log) {
        $lines //= access_log_data();
        check_log_has($name, 'access_log',
                      { lines => $lines, file => 'access.log',
                        tag => " (req $rep)" },
                      $block->access_log, $dry_run);
    }
    if (defined $block->no_access_log) {
        $lines //= access_log_data();
        check_log_lacks($name, 'no_access_log',
                        { lines => $lines, file => 'access.log',
                          tag => " (req $rep)" },
                        $block->no_access_log, $dry_run, 1);
    }
}

# Called once nginx has stopped after the block's requests.
sub check_shutdown_error_log ($$) {
    my ($block, $dry_run) = @_;
    my $name = $block->name;
    my $lines = error_log_data();
    my $log = { lines => $lines, file => 'error.log', tag => '' };

    if (defined $block->no_shutdown_error_log) {
        check_log_lacks($name, 'no_shutdown_error_log', $log,
                        $block->no_shutdown_error_log, $dry_run, 0);
    }

    check_log_has($name, 'shutdown_error_log', $log,
                  $block->shutdown_error_log, $dry_run);

    for my $line (@$lines) {
        if ($line =~ /\bAssertion .*? failed\.$/) {
            chomp(my $l = $line);
            Test::More::fail("$name - $l");
        }
    }
}

# ---------------------------------------------------------------------
# One repetition of a block: send its request(s) and check everything.

sub run_test_helper ($$$) {
    my ($block, $dry_run, $rep) = @_;
    my $name = $block->name;

    my $reqs = get_req_from_block($block);
    bail_out("$name - request empty") unless @$reqs;

    my $timeout = parse_time($block->timeout) // timeout();

    my $n = 0;
    my $need_array;
    my $res;
    my $idx = 0;

    for my $req (@$reqs) {
        my ($raw, $head_req) = $dry_run
            ? ("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 0)
            : send_request($req, $block->raw_request_middle_delay, $timeout,
                           $block);

        if ($block->pipelined_requests) {
            $n = @{ $block->pipelined_requests };
            $need_array = 1;
        } else {
            $need_array = @$reqs > 1;
        }

        # A pipelined exchange holds several responses back to back.
        while (1) {
            $raw //= '';
            my ($raw_headers, $left);
            if (!defined $block->ignore_response) {
                if (defined $block->http09) {
                    $res = HTTP::Response->new(200, 'OK', [], $raw);
                    $raw_headers = '';
                } else {
                    ($res, $raw_headers, $left) =
                        parse_response($name, $raw, $head_req);
                }
            }

            if ($n) {
                $raw = $left;
                $n--;
            } elsif (defined $left && $left ne '') {
                (my $l = $left) =~ s/([\0-\037\200-\377])/
                                     sprintf('\x{%02x}', ord $1)/ge;
                warn "WARNING: $name - unexpected extra bytes after last "
                     . "chunk in response: \"$l\"\n";
            }

            if (!defined $block->ignore_response) {
                check_error_code($block, $res, $dry_run, $idx, $need_array);
                check_raw_response_headers($block, $raw_headers // '',
                                           $dry_run, $idx, $need_array);
                check_response_headers($block, $res, $raw_headers // '',
                                       $dry_run, $idx, $need_array);
                transform_response_body($block, $res, $idx);
                check_response_body($block, $res, $dry_run, $idx, $rep,
                                    $need_array);
            }

            if ($n || $idx < @$reqs - 1) {
                sleep $block->wait if $block->wait;
                check_error_log($block, $res, $dry_run, $rep, $need_array);
                check_access_log($block, $dry_run, $rep)
                    unless defined $block->ignore_response;
            }

            $idx++;
            last unless $n;
        }
    }

    sleep $block->wait if $block->wait;
    check_error_log($block, $res, $dry_run, $rep, $need_array);
    check_access_log($block, $dry_run, $rep)
        unless defined $block->ignore_response;
}

1;
