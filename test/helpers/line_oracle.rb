# frozen_string_literal: true
#
# The line protocol of the Ruby oracles (line-oracle.ts is the other end): one JSON object per
# line on stdin, each answered by one line on stdout, in order; a failure answers
# {"error": "<class>: <message>"} for that line and the oracle goes on.

require 'json'

def serve_lines
  $stdout.sync = true
  $stdin.binmode
  $stdin.each_line do |line|
    out = begin
      yield JSON.parse(line)
    rescue StandardError => e
      { 'error' => "#{e.class}: #{e.message}" }
    end
    $stdout.write(JSON.generate(out), "\n")
  end
end
