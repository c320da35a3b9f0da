"""Package metadata read from settings.ini (nbdev 2 convention)."""
from configparser import ConfigParser
import setuptools

cfg = ConfigParser(delimiters=['='])
cfg.read('settings.ini', encoding='utf-8')
c = cfg['DEFAULT']
plugins = {'scollapse.filters': c.get('filter_plugins', '').split()}   # filters available by name once installed
setuptools.setup(
    name=c['lib_name'], version=c['version'], description=c['description'],
    author=c['author'], license=c['license'], python_requires=f">={c['min_python']}",
    packages=setuptools.find_packages(include=[c['lib_name'], c['lib_name'] + '.*']),
    install_requires=c['requirements'].split(),
    extras_require={'dev': c['dev_requirements'].split()},
    entry_points={'console_scripts': c['console_scripts'].split()} | plugins,
    include_package_data=True, zip_safe=False,
)
