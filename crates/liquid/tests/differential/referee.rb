# Differential-test second referee: renders generated Liquid cases with Ruby Liquid (Debian's
# ruby-liquid, Shopify Liquid 5.4). Same protocol as referee.py: JSON lines in, JSON lines out.
# Strict parsing (error_mode: :strict) and render! (the first error raises), as leadwire is strict.
require 'json'
require 'liquid'

# Partials from the case itself, for include and render.
class CaseFileSystem
  def initialize(partials)
    @partials = partials
  end

  def read_template_file(name)
    @partials.fetch(name) { raise Liquid::FileSystemError, "no template named #{name}" }
  end
end

$stdout.sync = false
$stdin.each_line do |line|
  next if line.strip.empty?
  c = JSON.parse(line)
  result =
    begin
      Liquid::Template.file_system = CaseFileSystem.new(c['partials'] || {})
      t = Liquid::Template.parse(c['template'], error_mode: :strict)
      out = t.render!(c['data'], strict_filters: true)
      if out.valid_encoding?
        { 'id' => c['id'], 'ok' => true, 'output' => out.encode('UTF-8') }
      else
        { 'id' => c['id'], 'ok' => false, 'unusable' => 'output is not valid UTF-8' }
      end
    rescue StandardError, SystemStackError => e
      { 'id' => c['id'], 'ok' => false, 'error' => "#{e.class}: #{e.message}".scrub }
    end
  text =
    begin
      JSON.generate(result)
    rescue StandardError => e
      JSON.generate({ 'id' => c['id'], 'ok' => false, 'unusable' => "not JSON: #{e.class}" })
    end
  $stdout.write(text, "\n")
end
$stdout.flush
