package Kle::Stream;

# Test::Nginx's stream sections, under either harness, without ngx_lua.
# (CPAN's own, Test::Nginx::Socket::Lua::Stream, sends the stream request
# from a content_by_lua location of the http server: it needs an nginx
# with Lua, and writes stream{} before http{}, where this project's
# stream module cannot see the elections.)  Owned by the stream suites
# (t/030..039); loaded after Kle::Emulator, before Test::Nginx::Socket.
#
#   --- stream_config          inside stream {}
#   --- stream_server_config   inside stream { server { listen PORT; ... } }
#   --- stream_request         bytes sent to PORT (none if absent)
#   --- stream_response        the bytes read back until the server closes
#   --- stream_response_like   a regex they must match
#
# PORT is $TEST_NGINX_STREAM_PORT: the file's extra port 8 (Kle::Nginx
# instances of a stream suite get 1 .. 7), unless the caller sets it.
# stream {} is written after http {} (post_main_config), and the block
# loads what stream needs after TEST_NGINX_LOAD_MODULES: nginx's own
# ngx_stream_module.so when the binary has stream as a dynamic module
# (Debian's), and ngx_stream_leader_election_module.so from the directory
# of the http module, unless TEST_NGINX_LOAD_MODULES names them already.
# The request goes to PORT instead of the http server's port; the answer
# is read as raw bytes (the http09 section both harnesses have).
#
# Helpers for init code: stream_get(PORT, BYTES) (TCP, read to EOF),
# udp_get(PORT, BYTES) (one datagram each way), nginx_t(CONF) (nginx -t
# on a configuration of one's own: Kle::Harness's, exported here too), and
# the modules' paths.

use strict;
use warnings;

use Exporter 'import';
use File::Basename qw(dirname);
use IO::Select ();
use IO::Socket::INET ();
use Time::HiRes qw(time);

use Kle::Harness qw(nginx_t);

our @EXPORT = qw(stream_get udp_get nginx_t stream_port);
our @EXPORT_OK = qw(stream_core_module stream_module http_module missing);

my $Port = $ENV{TEST_NGINX_STREAM_PORT} || Kle::Harness::extra_port(8);
$ENV{TEST_NGINX_STREAM_PORT} = $Port;

my $Binary = $ENV{TEST_NGINX_BINARY} || 'nginx';
my @Loaded = grep { $_ ne '' } split /\s+/, $ENV{TEST_NGINX_LOAD_MODULES} // '';

my ($Http) = grep { m{/ngx_http_leader_election_module\.so\z} } @Loaded;
my ($Stream) = grep { m{/ngx_stream_leader_election_module\.so\z} } @Loaded;
my $Core;
my $Missing;

sub stream_port () { $Port }

# nginx's ngx_stream_module.so if the binary has stream as a dynamic
# module, '' if built in; undef (and missing() says why) if neither.
sub stream_core_module () { $Core }
sub stream_module () { $Stream }
sub http_module () { $Http }
sub missing () { $Missing }

{
    my $v = `$Binary -V 2>&1` // '';
    if ($v =~ /--with-stream=dynamic\b/) {
        my ($dir) = $v =~ /--modules-path=(\S+)/;
        if (!$dir) {
            my ($prefix) = $v =~ /--prefix=(\S+)/;
            $dir = ($prefix // '/usr/local/nginx') . '/modules';
        }
        $Core = $ENV{TEST_NGINX_STREAM_CORE_MODULE}
                // "$dir/ngx_stream_module.so";
        if (!-f $Core) {
            $Missing = "$Binary has stream as a dynamic module, and $Core "
                       . "is not there (Debian: apt-get install "
                       . "libnginx-mod-stream)";
        }
    } elsif ($v =~ /--with-stream\b/) {
        $Core = '';
    } else {
        $Missing = "$Binary is built without stream";
    }

    if ($Http && !$Stream) {
        $Stream = dirname($Http) . '/ngx_stream_leader_election_module.so';
        # built with the http module: its absence is a failure, not a skip
        die "Kle::Stream: no $Stream beside $Http\n" if !-f $Stream;
    }
}

# what a stream block loads after TEST_NGINX_LOAD_MODULES
my @Extra = grep { my $m = $_; !grep { $_ eq $m } @Loaded }
            grep { defined && $_ ne '' } ($Core, $Stream);

require Test::Nginx::Util;

Test::Nginx::Util::add_block_preprocessor(sub {
    my $block = shift;

    my $sc = $block->stream_config;
    my $ssc = $block->stream_server_config;

    if (defined $sc || defined $ssc) {
        $block->set_value('main_config',
                          join('', map { "load_module $_;\n" } @Extra)
                          . ($block->main_config // ''));
        $block->set_value('post_main_config',
                          ($block->post_main_config // '') . <<"_EOC_");
stream {
@{[ $sc // '' ]}
    server {
        listen 127.0.0.1:$Port;

@{[ $ssc // '' ]}
    }
}
_EOC_
    }

    my $resp = $block->stream_response;
    my $like = $block->stream_response_like;

    if (defined $block->stream_request || defined $resp || defined $like) {
        Test::Nginx::Util::server_port_for_client($Port);
        $block->set_value('raw_request', $block->stream_request // '');
        $block->set_value('http09', 1);
        $block->set_value('response_body', $resp) if defined $resp;
        $block->set_value('response_body_like', $like) if defined $like;

    } else {
        Test::Nginx::Util::server_port_for_client($Kle::Harness::Port);
    }
});

# Sends $data to 127.0.0.1:$port over TCP and reads until the server
# closes; undef if it cannot connect or does not close within $timeout.
sub stream_get ($;$$) {
    my ($port, $data, $timeout) = @_;
    $timeout //= 5;
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                     PeerPort => $port, Proto => 'tcp',
                                     Timeout => $timeout)
        or return undef;
    syswrite($sock, $data) if defined $data && $data ne '';
    my $sel = IO::Select->new($sock);
    my $deadline = time + $timeout;
    my $resp = '';
    while (time < $deadline) {
        last unless $sel->can_read($deadline - time);
        my $n = sysread($sock, my $buf, 4096);
        last if !defined $n;
        if ($n == 0) {
            close $sock;
            return $resp;
        }
        $resp .= $buf;
    }
    close $sock;
    return undef;
}

# One datagram to 127.0.0.1:$port, one back; undef if none in $timeout.
sub udp_get ($$;$) {
    my ($port, $data, $timeout) = @_;
    $timeout //= 2;
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                     PeerPort => $port, Proto => 'udp')
        or return undef;
    $sock->send($data) or return undef;
    my $sel = IO::Select->new($sock);
    return undef unless $sel->can_read($timeout);
    my $buf;
    defined $sock->recv($buf, 65536) or return undef;
    return $buf;
}

1;
