package Kle::Harness;

# What every Test::Nginx suite of this project shares, under either harness
# (the in-tree t/lib/Test/Nginx or CPAN's Test::Nginx 0.33): see
# t/lib/README.md.  Loaded by Kle::Emulator, Kle::Nginx and Kle::Hooks, so
# a suite that starts with "use Kle::Emulator;" has all of it; it must be
# loaded before Test::Nginx::Socket.
#
# 1. One port and one server root per .t file, so that "prove -j2" works:
#    t/NNN_name.t gets TEST_NGINX_SERVER_PORT = BASE + NNN (BASE is
#    TEST_NGINX_PORT, else 1984) and TEST_NGINX_SERVROOT = t/servroot_NNN.
#    A TEST_NGINX_SERVER_PORT or TEST_NGINX_SERVROOT set by the caller
#    wins.  The file's further ports are PORT + 1000 * K (K = 1 .. 9):
#    extra_port(K), in the environment as TEST_NGINX_EXTRA_PORT_K.  Fixed,
#    never chosen by bind-then-close: below the kernel's ephemeral range,
#    nothing else takes them between choosing and listening.
#
# 2. "--- init" code runs in package main in both harnesses (CPAN's
#    evaluates it in package Test::Nginx::Util): a block preprocessor
#    prefixes it with "package main;" and a #line naming the block, so
#    init code calls the helpers, Test::More and the suite's own subs
#    unqualified, and its errors name the block.
#
# 3. start_test_nginx(): starts Test::Nginx's nginx again after a block's
#    init stopped it (CPAN's Test::Nginx::Util has no start_nginx).
#    reload_test_nginx($edit): edits its nginx.conf and sends SIGHUP.
#    quit_test_nginx($secs): sends it SIGQUIT and waits for the master.
#
# 4. Opt-in helpers: must_die_messages() (a must_die block's error_log
#    lines are exact [emerg] messages), nginx_t($conf) and
#    nginx_t_http($http) ("nginx -t" on a configuration of one's own).

use strict;
use warnings;

use Exporter 'import';
use File::Basename qw(basename);
use File::Path qw(make_path);
use File::Spec ();
use IO::Socket::INET ();
use Time::HiRes qw(sleep time);

our @EXPORT_OK = qw(extra_port start_test_nginx reload_test_nginx
                    quit_test_nginx file_number must_die_messages
                    nginx_t nginx_t_http);

if ($INC{'Test/Nginx/Util.pm'}) {
    die "Kle::Harness (or Kle::Emulator, Kle::Nginx, Kle::Hooks) must be "
        . "loaded before Test::Nginx::Socket\n";
}

my $Base = $ENV{TEST_NGINX_PORT} || 1984;
my $Stem = basename($0, '.t');
my ($Number) = $Stem =~ /^(\d+)_/;
$Number //= 0;

# The number of the .t file (NNN of t/NNN_name.t), 0 for other names.
sub file_number () { $Number + 0 }

if (!$ENV{TEST_NGINX_SERVER_PORT}) {
    $ENV{TEST_NGINX_SERVER_PORT} = $Base + $Number % 1000;
}
our $Port = $ENV{TEST_NGINX_SERVER_PORT};

if (!$ENV{TEST_NGINX_SERVROOT}) {
    my $dir = $Stem =~ /^(\d+)_/ ? "t/servroot_$1" : "t/servroot_$Stem";
    $ENV{TEST_NGINX_SERVROOT} = File::Spec->rel2abs($dir);
}

sub extra_port ($) {
    my $k = shift;
    die "extra_port: K is 1 .. 9, not $k\n" unless $k =~ /^[1-9]\z/;
    return $Port + 1000 * $k;
}

$ENV{"TEST_NGINX_EXTRA_PORT_$_"} = extra_port($_) for 1 .. 9;

require Test::Nginx::Util;

Test::Nginx::Util::add_block_preprocessor(sub {
    my $block = shift;
    my $init = $block->init;
    return unless defined $init && $init !~ /\A#kle-init\n/;
    (my $where = "$0 " . $block->name . ' --- init') =~ tr/"\n/'/d;
    $block->set_value('init',
                      "#kle-init\npackage main;\n#line 1 \"$where\"\n$init");
});

# Starts Test::Nginx's nginx with its configuration as the harness would
# (daemon mode; not under valgrind) and waits until it listens.
sub start_test_nginx () {
    no warnings 'once';
    my $root = $Test::Nginx::Util::ServRoot;
    my $conf = $Test::Nginx::Util::ConfFile;
    my $bin = $Test::Nginx::Util::NginxBinary || 'nginx';
    my $out = `$bin -p $root/ -c $conf -e $root/logs/error.log 2>&1`;
    die "start_test_nginx: nginx did not start: $out\n" if $? != 0;
    my $deadline = time + 10;
    while (time < $deadline) {
        my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                         PeerPort => $Port,
                                         Proto => 'tcp', Timeout => 1);
        if ($sock) {
            close $sock;
            return 1;
        }
        sleep 0.02;
    }
    die "start_test_nginx: nginx does not listen on $Port\n";
}

# Edits Test::Nginx's nginx.conf with $edit (a sub from the text to the new
# text) and sends SIGHUP to its master; returns the time of the signal.
sub reload_test_nginx ($) {
    my $edit = shift;
    my $conf = "$ENV{TEST_NGINX_SERVER_ROOT}/conf/nginx.conf";
    open my $in, '<', $conf or die "$conf: $!\n";
    my $text = do { local $/; <$in> };
    close $in;
    $text = $edit->($text);
    open my $out, '>', $conf or die "$conf: $!\n";
    print $out $text;
    close $out;
    my $t = time;
    kill 'HUP', Test::Nginx::Util::get_pid_from_pidfile('');
    return $t;
}

# Sends SIGQUIT to Test::Nginx's master and waits up to $secs (polling
# every 50 ms, as Kle::Emulator::wait_until) for it to be gone; returns its
# pid.
sub quit_test_nginx ($) {
    my $secs = shift;
    my $pid = Test::Nginx::Util::get_pid_from_pidfile('');
    kill 'QUIT', $pid;
    my $deadline = time + $secs;
    while (kill 0, $pid) {
        last if time >= $deadline;
        sleep 0.05;
    }
    return $pid;
}

# From then on, a must_die block's error_log lines are exact messages:
# each must be an [emerg] line that holds the message and then the file
# and line.  (A block with must_die and no request gets "GET /t".)
sub must_die_messages () {
    Test::Nginx::Util::add_block_preprocessor(sub {
        my $block = shift;
        return unless defined $block->must_die;
        $block->set_value('request', "GET /t\n")
            unless defined $block->request;
        my $pats = $block->error_log;
        return if !defined $pats || ref $pats;
        $block->set_value('error_log', [
            map { qr/\[emerg\] \d+#\d+: \Q$_\E in \S+\/nginx\.conf:\d+$/ }
            grep { $_ ne '' } split /\n/, $pats
        ]);
    });
}

# nginx -t on $conf (the text of a whole nginx.conf), written to
# conf/nginx.conf of a directory of its own beside the file's server root
# (TEST_NGINX_SERVROOT with "_t"); returns (exit status, output, the
# configuration file's path), the status 128 + N if nginx died of signal N.
sub nginx_t ($) {
    my $conf = shift;
    my $bin = $ENV{TEST_NGINX_BINARY} || 'nginx';
    my $dir = "$ENV{TEST_NGINX_SERVROOT}_t";
    my $file = "$dir/conf/nginx.conf";
    make_path("$dir/logs", "$dir/conf");
    open my $out, '>', $file or die "$file: $!\n";
    print $out $conf;
    close $out;
    my $text = `$bin -t -p $dir/ -c $file -e $dir/logs/error.log 2>&1`;
    return ($? & 127 ? 128 + ($? & 127) : $? >> 8, $text, $file);
}

# nginx_t on "http { $http }", after a load_module line for each of
# TEST_NGINX_LOAD_MODULES, error_log, pid and "events {}" (so $http starts
# at line 6 with one module).
sub nginx_t_http ($) {
    my $http = shift;
    my $dir = "$ENV{TEST_NGINX_SERVROOT}_t";
    return nginx_t(join('', map { "load_module $_;\n" }
                                split ' ', $ENV{TEST_NGINX_LOAD_MODULES} // '')
                   . "error_log $dir/logs/error.log;\n"
                   . "pid $dir/logs/nginx.pid;\n"
                   . "events {}\nhttp {\n$http\n}\n");
}

1;
